"""A production-like deployment inside a test: real `celery worker` and `celery beat` processes
(in process groups of their own, so they can be killed like on a server), a scripted SMTP sink,
and a web app sharing the database and a Celery queue of its own: on Redis, or on RabbitMQ for
the tests parametrized with BOTH_BROKERS (a virtual host of their own on the machine's server)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from service import create_app
from service.app_state import get_database
from service.config import Settings
from service.mailsink import MailSink, SinkHandler
from tests.conftest import DATABASES, make_settings
from tests.rabbitmq import shared_vhost

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]

# The guarantee tests run on both of Celery's brokers (README, "RabbitMQ as the broker"); the
# rest of the pipeline on Redis only, for the suite's time.
BOTH_BROKERS = pytest.mark.parametrize("broker", ["redis", "rabbitmq"])


class ScriptedHandler(SinkHandler):
    """A sink whose answers a test can script: an outage for everyone, or per-recipient
    refusals, each a list of replies used up one per attempt, after which mail is accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.outage = threading.Event()
        self.refusals: dict[str, list[str]] = {}
        self.attempts: Counter[str] = Counter()
        self.refuse_every_recipient: str | None = None  # e.g. a relay refusal for everyone
        self.refuse_sender: str | None = None  # MAIL FROM refused: a server-wide problem
        self.refuse_data: str | None = None  # the message refused after DATA, for everyone
        self.latency = 0.0  # seconds before each reply to MAIL, RCPT and DATA (a far relay)
        self.smtputf8 = True  # False: EHLO does not offer SMTPUTF8 (RFC 6531), as older relays

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        if self.outage.is_set():
            return ["421 4.3.2 Service not available, try later"]
        session.host_name = hostname
        if not self.smtputf8:
            return [line for line in responses if line[4:].upper() != "SMTPUTF8"]
        return responses

    async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:
        if self.outage.is_set():
            return "421 4.3.2 Service not available, try later"
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        await asyncio.sleep(self.latency)
        if self.refuse_sender:
            return self.refuse_sender
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        await asyncio.sleep(self.latency)
        with self._lock:
            self.attempts[address] += 1
            if self.refuse_every_recipient:  # "{rcpt}" stands for the address refused
                return self.refuse_every_recipient.replace("{rcpt}", address)
            script = self.refusals.get(address)
            if script:
                return script.pop(0) if len(script) > 1 else self.refusals.pop(address)[0]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.latency)
        if self.refuse_data:
            return self.refuse_data
        return await super().handle_DATA(server, session, envelope)

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(r for mail in self.received for r in mail.recipients)


@dataclass
class Deployment:
    app: Flask
    settings: Settings
    sink: MailSink
    handler: ScriptedHandler
    workdir: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        s = self.settings
        values = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "SECRET_KEY": s.secret_key,
            "DATABASE_URL": s.database_url,
            "REDIS_URL": s.redis_url,
            "CELERY_BROKER_URL": s.celery_broker_url,
            "SMTP_URL": s.smtp_url,
            "BASE_URL": s.base_url,
            "MAIL_FROM": s.mail_from,
            "CELERY_QUEUE": s.task_queue,
            "SEND_LEASE_SECONDS": str(s.send_lease_seconds),
            "SMTP_RETRY_SECONDS": str(s.retry_seconds),
            "SWEEP_SECONDS": str(s.sweep_seconds),
            "SMTP_CONNECTIONS": str(s.smtp_connections),
            "SMTP_MESSAGES_PER_CONNECTION": str(s.smtp_messages_per_connection),
            "SEND_CHAINS": str(s.send_chains),
            "COMPLAINT_RATE_LIMIT": str(s.complaint_rate_limit),
            "BOUNCE_RATE_LIMIT": str(s.bounce_rate_limit),
            "WEBHOOK_RETRY_SECONDS": str(s.webhook_retry_seconds),
            "WEBHOOK_BACKOFF_SECONDS": str(s.webhook_backoff_seconds),
            "TIMEZONE": s.timezone,
            "DIGEST_HOUR": str(s.digest_hour),
            "DIGEST_WEEKDAY": str(s.digest_weekday + 1),  # ISO: 1 is Monday
            "WEBHOOK_ALLOW_PRIVATE": "1" if s.webhook_allow_private else "0",
        }
        if s.digest_clock_file:
            values["DIGEST_CLOCK_FILE"] = s.digest_clock_file
        if s.send_rate:
            values["SEND_RATE"] = str(s.send_rate)
        if s.worker_metrics_port:
            values["WORKER_METRICS_PORT"] = str(s.worker_metrics_port)
        return {**values, **extra}

    def _start(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [str(BIN / "celery"), "-A", "workers", *args],
            env=self.env(),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as under a service manager
        )
        self.processes.append(process)
        return process

    def worker(self, name: str = "w1", concurrency: int = 2) -> subprocess.Popen[bytes]:
        node = f"--hostname={name}-{uuid.uuid4().hex[:6]}@%h"
        options = ["--loglevel=INFO", "--without-mingle", "--without-gossip"]
        return self._start(["worker", f"--concurrency={concurrency}", node, *options], name)

    def beat(self) -> subprocess.Popen[bytes]:
        return self._start(
            ["beat", "--loglevel=INFO", f"--schedule={self.workdir / 'beat-schedule'}"], "beat"
        )

    @staticmethod
    def kill(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        os.killpg(process.pid, sig)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.workdir.glob("*.log"))
        )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture
def broker() -> str:
    """Celery's broker for the deployment: redis, or rabbitmq (parametrized: BOTH_BROKERS)."""
    return "redis"


@pytest.fixture
def celery_broker_url(broker: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """CELERY_BROKER_URL for the deployment: empty on Redis (REDIS_URL's server), a virtual
    host of its own on the machine's RabbitMQ (skips when none answers)."""
    if broker == "rabbitmq":
        skip_on_the_second_database(request)
        with shared_vhost() as url:
            yield url
    else:
        yield ""


def skip_on_the_second_database(request: pytest.FixtureRequest) -> None:
    """A RabbitMQ variant runs on one database: PostgreSQL, production's, when the suite runs
    on both. The broker changes nothing the database does, and each variant costs half a
    minute of the suite's time."""
    callspec = getattr(request.node, "callspec", None)
    database = callspec.params.get("database_url") if callspec else None
    if database == "sqlite" and "postgresql" in DATABASES:
        pytest.skip("the RabbitMQ variant runs on PostgreSQL only when the suite runs on both")


@pytest.fixture
def deployment(
    app: Flask,
    database_url: str,
    redis_url: str,
    celery_broker_url: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Deployment]:
    """Options through indirect parametrization are not needed: tests adjust `settings` with
    `deployment_settings` marks."""
    marker = request.node.get_closest_marker("deployment_settings")
    changes = {"celery_broker_url": celery_broker_url, **(marker.kwargs if marker else {})}
    with deployed(database_url, redis_url, tmp_path, **changes) as d:
        yield d


@contextlib.contextmanager
def deployed(
    database_url: str, redis_url: str, workdir: Path, **changes: Any
) -> Iterator[Deployment]:
    """A deployment on `redis_url` (a queue of its own there, or on the broker
    `celery_broker_url` names, among `changes`) and the database, whose schema the `app`
    fixture has made; its processes are killed at the end."""
    handler = ScriptedHandler()
    sink = MailSink(handler).start()
    defaults = {"send_lease_seconds": 3, "retry_seconds": 0.5, "sweep_seconds": 1.0}
    settings = make_settings(
        database_url,
        redis_url,
        sink.url,
        task_queue=f"pressroom-deploy-{uuid.uuid4().hex[:8]}",
        **{**defaults, **changes},
    )
    web = create_app(settings)
    deployment = Deployment(web, settings, sink, handler, workdir)
    try:
        yield deployment
    finally:
        deployment.stop()
        sink.stop()
        with web.app_context():
            get_database().dispose()
