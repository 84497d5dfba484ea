"""The Celery app: `celery -A workers worker` and `celery -A workers beat`."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

import click
from celery import Celery, Task
from celery.signals import setup_logging, task_postrun, task_prerun, worker_ready

from service import broker, logs
from service.config import Settings, load_settings
from service.redis_url import redis_url_or_embedded
from workers import shutdown

if TYPE_CHECKING:
    from flask import Flask


def create_celery(flask_app: Flask) -> Celery:
    """A Celery app whose tasks each run inside the Flask app's context (Flask's own pattern)."""

    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with shutdown.task_in_hand(), flask_app.app_context():
                return self.run(*args, **kwargs)

    settings = flask_app.extensions["pressroom.settings"]
    celery = _Celery(
        flask_app.import_name,
        task_cls=FlaskTask,
        set_as_current=True,
        log_format=settings.log_format,
    )
    celery.conf.update(_configuration(settings, flask_app.extensions["pressroom.broker_url"]))
    import workers.tasks  # noqa: F401  (registers the tasks on this app)

    @worker_ready.connect(weak=False)
    def serve_metrics(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is celery:  # this app's worker, not another's
            from workers import metrics_server  # not for beat: it stays light

            metrics_server.serve(settings)

    flask_app.extensions["celery"] = celery
    return celery


def create_beat_celery(settings: Settings) -> Celery:
    """The Celery app `celery -A workers beat` runs: beat only sends the sweep on its schedule,
    by name, so it needs the broker and the queue, not the Flask app, the database or the
    tasks (about 50 MiB less at rest: issue 12's footprint)."""
    if not logs.configured():
        logs.configure(settings.log_format)
    celery = _Celery("service", set_as_current=True, log_format=settings.log_format)
    # Beat needs no Redis when Celery's broker is RabbitMQ: none is embedded then.
    url = settings.celery_broker_url or redis_url_or_embedded(settings)
    celery.conf.update(_configuration(settings, url))
    return celery


class _Celery(Celery):  # type: ignore[misc]
    """Celery whose worker and beat print no banner to stdout when logs are JSON: every line
    a process writes is then one JSON object (the worker logs its start as usual)."""

    def __init__(self, *args: Any, log_format: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.quiet = log_format == "json"

    @cached_property
    def Worker(self) -> type:
        return _quiet_if(self.quiet, self.subclass_with_self("celery.apps.worker:Worker"))

    @cached_property
    def Beat(self) -> type:
        return _quiet_if(self.quiet, self.subclass_with_self("celery.apps.beat:Beat"))


def _quiet_if(quiet: bool, base: type) -> type:
    """`base` (Celery's worker or beat), told `quiet` (no banner) unless its command line
    already is."""

    class Quiet(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, "quiet": kwargs.get("quiet") or quiet})

    return Quiet


@setup_logging.connect(weak=False)
def _keep_our_logging(**_: Any) -> None:
    """Connected, so Celery leaves the logging that create_app (service/logs.py) set up: INFO
    and above, `--loglevel` aside (a test's in-process worker keeps pytest's)."""


@task_prerun.connect(weak=False)
def _bind_task(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    logs.clear()
    logs.bind(task_id=task_id, task=getattr(task, "name", None))


@task_postrun.connect(weak=False)
def _unbind_task(**_: Any) -> None:
    logs.clear()


def _configuration(settings: Settings, broker_url: str) -> dict[str, Any]:
    return {
        # broker_url, the queue and how it is declared, broker_transport_options: the same for
        # the web's task client (service/broker.py; Redis or RabbitMQ).
        **broker.celery_settings(broker_url, settings.task_queue),
        "result_backend": None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # One process, its tasks in threads: a send waits on the mail server, not the CPU, and
        # its SMTP_CONNECTIONS connections are threads of the process too (sending.relay_pool).
        # A process costs tens of MiB; scale out with more worker processes or machines.
        "worker_pool": "threads",
        "worker_concurrency": settings.worker_concurrency,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        "timezone": "UTC",
        "beat_schedule": {
            # The doorbell's backstop: expired leases, lost tasks, schedules, finished sends.
            "sweep": {"task": "pressroom.sweep", "schedule": settings.sweep_seconds},
        },
    }


_app: Celery | None = None


def __getattr__(name: str) -> Celery:
    """`celery -A workers` finds `workers.app`, built from the environment on first use: for
    `beat`, the light app of create_beat_celery; for anything else, with the Flask app."""
    global _app
    if name in ("app", "celery"):
        if _app is None:
            if _running("beat"):
                _app = create_beat_celery(load_settings())
            else:
                from service import create_app

                _app = create_celery(create_app())
        return _app
    raise AttributeError(name)


def _running(subcommand: str) -> bool:
    """Whether the celery command line runs `subcommand` (its group callback loads the app,
    and click knows by then which subcommand follows)."""
    context = click.get_current_context(silent=True)
    return context is not None and context.invoked_subcommand == subcommand
