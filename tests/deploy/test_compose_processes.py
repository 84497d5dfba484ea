"""What deploy/compose.yaml starts, started as plain processes: no container runtime can pull
an image on this machine, so this runs the commands the compose file names for migrate, web,
worker and beat (read from it, never typed here), with the environment of its env file, where
only the hosts are local ones: this test's database, an embedded Redis, and an aiosmtpd sink in
Mailpit's place. A reader subscribes and confirms, a publisher publishes through the API, and
the reader gets the release."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from service.embedded_redis import free_port
from service.mailsink import MailSink, ReceivedMail
from tests.conftest import DATABASES, ROOT
from tests.databases import postgres_schema
from tests.deploy.helpers import PRESSROOM_SERVICES, command, compose_services, service_env
from tests.helpers import BIN, clean_env, stop, wait_for_http

READER = "reader@mail.example"
PUBLISHER = "desk@press.example"
TITLE = "The harbour opens on Monday"
# In the image: the address gunicorn binds and beat's folder; here a local port and tmp_path.
CONTAINER_BIND = "0.0.0.0:8000"
CONTAINER_STATE = "/var/lib/pressroom"
# Five processes and four command-line runs, each loading the app, on a shared machine.
pytestmark = pytest.mark.timeout(300)


@dataclass
class Stack:
    env: dict[str, str]
    base: str
    sink: MailSink
    workdir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def local(self, args: list[str]) -> list[str]:
        """A compose command as this machine runs it: the venv's executable, a local port."""
        executable = BIN / args[0]
        assert executable.is_file(), f"{args[0]} is not installed by the project"
        port = self.base.rsplit(":", 1)[1]
        return [
            str(executable),
            *(
                arg.replace(CONTAINER_BIND, f"127.0.0.1:{port}").replace(
                    CONTAINER_STATE, str(self.workdir)
                )
                for arg in args[1:]
            ),
        ]

    def start(self, name: str, args: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - the process holds it
        self.processes[name] = subprocess.Popen(
            self.local(args), env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def run(self, args: list[str], stdin: str | None = None) -> str:
        result = subprocess.run(
            self.local(args), env=self.env, cwd=ROOT, input=stdin, capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    def api(self, path: str, body: Any, token: str | None = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.base + path, json.dumps(body).encode(), headers)
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.workdir.glob("*.log"))
        )

    def mail_to(
        self, address: str, subject: str | None = None, timeout: float = 60
    ) -> ReceivedMail:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for mail in list(self.sink.handler.received):
                if address in mail.recipients and subject in (None, str(mail.message["Subject"])):
                    return mail
            time.sleep(0.1)
        raise AssertionError(f"no mail to {address} ({subject})\n{self.logs()}")


@pytest.fixture(params=DATABASES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own, empty: the migrate service brings it up."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'pressroom.db'}"
        return
    with postgres_schema("pressroom_compose") as url:
        yield url


@pytest.fixture
def stack(database: str, redis_url: str, tmp_path: Path) -> Iterator[Stack]:
    services = compose_services()
    environments = [service_env(services[name]) for name in PRESSROOM_SERVICES]
    assert all(env == environments[0] for env in environments), "one env file for all"
    from_file = environments[0]
    sink = MailSink().start()
    port = free_port()
    local_hosts = {
        "DATABASE_URL": database,
        "REDIS_URL": redis_url,
        "SMTP_URL": sink.url,
        "BASE_URL": f"http://127.0.0.1:{port}",
    }
    assert set(local_hosts) <= set(from_file), "the env file names every host"
    env = clean_env(**{**from_file, **local_hosts}, CELERY_QUEUE=f"compose-{port}")
    if from_file.get("WORKER_METRICS_PORT"):
        env["WORKER_METRICS_PORT"] = str(free_port())
    stack = Stack(env, f"http://127.0.0.1:{port}", sink, tmp_path)
    try:
        stack.run(command(services["migrate"]))
        for name in ("web", "worker", "beat"):
            stack.start(name, command(services[name]))
        wait_for_http(stack.base + "/healthz", timeout=60)
        yield stack
    finally:
        stop(list(stack.processes.values()))
        sink.stop()


def worker_answers_its_healthcheck(stack: Stack) -> None:
    """The worker's healthcheck as compose runs it: its shell, with `$$` read as `$` and
    HOSTNAME set as in a container (the worker's default node name is celery@<hostname>)."""
    kind, line = compose_services()["worker"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    env = {**stack.env, "HOSTNAME": socket.gethostname(), "PATH": f"{BIN}:{stack.env['PATH']}"}
    deadline = time.monotonic() + 90
    while True:
        check = subprocess.run(
            ["sh", "-c", line.replace("$$", "$")], env=env, cwd=ROOT, capture_output=True,
            text=True, timeout=60,
        )  # fmt: skip
        if check.returncode == 0:
            return
        assert time.monotonic() < deadline, check.stdout + check.stderr + stack.logs()
        time.sleep(1)


def test_a_reader_gets_a_release_through_the_processes_compose_names(stack: Stack) -> None:
    # The operator's commands, as `docker compose run --rm web flask ...` would run them.
    flask = command(compose_services()["migrate"])[:3]
    stack.run([*flask, "publisher", "create", PUBLISHER, "--password-stdin"], "a long password\n")
    token = stack.run([*flask, "token", "create", PUBLISHER]).strip()

    assert stack.api("/api/v1/subscriptions", {"email": READER, "language": "en"}) == {
        "status": "pending"
    }
    text = stack.mail_to(READER).message.get_body(("plain",)).get_content()
    link = re.search(re.escape(stack.base) + r"(/confirm/[A-Za-z0-9._\-]+)", text)
    assert link, text
    confirm = urllib.request.Request(stack.base + link.group(1), b"", method="POST")
    with urllib.request.urlopen(confirm, timeout=30) as answer:
        assert answer.status == 200

    release = {"title": TITLE, "summary": "s", "body": "b", "language": "en", "publish": True}
    stack.api("/api/v1/releases", release, token)

    mail = stack.mail_to(READER, TITLE)
    assert mail.message["From"] == stack.env["MAIL_FROM"]  # the env file's own, kept
    worker_answers_its_healthcheck(stack)
    ended = [name for name, process in stack.processes.items() if process.poll() is not None]
    assert not ended, f"{ended} ended\n{stack.logs()}"
