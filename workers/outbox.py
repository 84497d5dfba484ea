"""The Outbox of a task in this worker, built from its Flask app: the one place where the
sending code (service.sending) meets the app, Celery and this process's kept connection."""

from __future__ import annotations

import functools
import threading

from celery import current_app as current_celery
from celery.signals import worker_process_shutdown
from flask import current_app

from service.app_state import session_scope
from service.db import utcnow
from service.redis_clients import app_redis
from service.sending.messages import Composer, MessageCache
from service.sending.outbox import Outbox
from service.sending.transport import SmtpMailer, SmtpSettings
from service.task_names import TaskName
from workers import shutdown

# Per thread: with --pool=threads (or gevent) tasks run side by side in one process, and an SMTP
# connection, or a message cache being refilled, cannot be shared between two of them.
_per_thread = threading.local()
_messages = MessageCache()


def outbox() -> Outbox:
    extensions = current_app.extensions
    settings = extensions["pressroom.settings"]
    composer = Composer.from_extensions(extensions)
    return Outbox(
        open_session=session_scope,
        redis=app_redis(),
        transport=kept_transport(SmtpSettings.from_url(settings.smtp_url)),
        settings=settings,
        composer=composer,
        messages=functools.partial(_messages.get, composer, now=utcnow),
        ring=ring,
        stop_requested=shutdown.requested,
    )


def ring(task: TaskName, *args: int | str) -> bool:
    """Enqueue a task of this worker's own app (raises when the broker is unreachable: the
    task then fails, and its own retry or the sweep carries the work)."""
    current_celery.tasks[task.value].delay(*args)
    return True


def kept_transport(wanted: SmtpSettings) -> SmtpMailer:
    """This worker thread's SMTP connection, kept from one task to the next: a send to
    100,000 readers is some hundreds of batches, and each new connection costs a TCP (and TLS)
    handshake, EHLO and AUTH; notices and test copies take the same one."""
    kept: SmtpMailer | None = getattr(_per_thread, "mailer", None)
    if kept is None or kept.settings != wanted:
        if kept is not None:
            kept.close()
        kept = _per_thread.mailer = SmtpMailer(wanted)
    return kept


@worker_process_shutdown.connect
def _close_kept_transport(**_: object) -> None:
    kept: SmtpMailer | None = getattr(_per_thread, "mailer", None)
    if kept is not None:
        kept.close()
