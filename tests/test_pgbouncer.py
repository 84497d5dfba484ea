"""Behind PgBouncer in transaction pooling mode (README, "Behind PgBouncer"), with Debian's
pgbouncer in front of the test PostgreSQL: the migrations, the operator's commands, gunicorn and a
Celery worker reach the database through it only, with DATABASE_POOL_MODE=transaction. A reader
signs up and confirms, a release is published and sent, the reader gets it, and readers open it
at once, again and again. With prepared statements left on (DATABASE_POOL_MODE=session), the
same test fails: the web answers 500, "prepared statement "_pg3_0" already exists".

Skipped without TEST_DATABASE_URL or without the pgbouncer binary (apt-get install pgbouncer).
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from service.config import Settings
from service.db import Database
from service.embedded_redis import free_port
from service.mailsink import MailSink
from tests import pgbouncer
from tests.conftest import ROOT
from tests.helpers import BIN, clean_env, stop, wait_for_http

PUBLISHER = "desk@press.example"
PASSWORD = "a long enough password"
READER = "kari@mail.example"
TITLE = "Pressroom behind PgBouncer"


@pytest.fixture
def behind_pgbouncer(tmp_path: Path) -> Iterator[URL]:
    """A fresh database reached through a private PgBouncer of two server connections, fewer
    than the processes' clients: their transactions take turns on the same server connections."""
    pgbouncer.skip_unless_available()
    with (
        pgbouncer.fresh_database("pgbouncer") as database,
        pgbouncer.transaction_pooler(database, tmp_path, pool_size=2) as url,
    ):
        yield url


def two_clients_take_turns(database: Database, rounds: int = 8) -> None:
    """Two connections of one engine run the same query in turn, a transaction each: psycopg
    prepares a query on its sixth run on a connection (prepare_threshold, 5 by default)."""
    with database.engine.connect() as first, database.engine.connect() as second:
        for number in range(rounds):
            for connection in (first, second):
                assert connection.execute(text("SELECT :n + 1"), {"n": number}).scalar() == (
                    number + 1
                )
                connection.commit()


def test_prepared_statements_break_under_transaction_pooling_and_the_setting_turns_them_off(
    tmp_path: Path,
) -> None:
    """The pooler here really pools by transaction (one server connection for two clients), so
    that the end-to-end test below would fail with psycopg's prepared statements left on."""
    pgbouncer.skip_unless_available()
    with (
        pgbouncer.fresh_database("pgbouncer") as database,
        pgbouncer.transaction_pooler(database, tmp_path, pool_size=1) as url,
    ):
        left_on = Database(url.render_as_string(hide_password=False))
        with pytest.raises(
            DBAPIError, match=r'prepared statement "_pg3_\d+" (already exists|does not exist)'
        ):
            two_clients_take_turns(left_on)
        left_on.dispose()

        settings = Settings.from_env(
            {
                "SECRET_KEY": "k" * 32,
                "REDIS_URL": "redis://127.0.0.1:6379/0",
                "DATABASE_URL": url.render_as_string(hide_password=False),
                "DATABASE_POOL_MODE": "transaction",
            }
        )
        turned_off = Database(
            settings.sqlalchemy_url, prepared_statements=settings.prepared_statements
        )
        two_clients_take_turns(turned_off)
        turned_off.dispose()


class Reader:
    """A reader's browser: cookies, and the CSRF token of the page it posts from."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=10) as response:
            return response.read().decode()

    def post_form(self, path: str, page: str, **fields: str) -> str:
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        data = urllib.parse.urlencode({**({"csrf_token": token[1]} if token else {}), **fields})
        with self.opener.open(self.base + path, data.encode(), timeout=10) as response:
            return response.read().decode()


def mail_to(sink: MailSink, address: str, subject: str | None = None) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for mail in list(sink.handler.received):
            if address in mail.recipients and subject in (None, str(mail.message["Subject"])):
                return mail
        time.sleep(0.1)
    raise TimeoutError(f"no mail to {address} ({subject})")


def test_a_signup_and_a_send_through_pgbouncer_in_transaction_pooling_mode(
    behind_pgbouncer: URL, tmp_path: Path, redis_url: str
) -> None:
    sink = MailSink().start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_env(
        SECRET_KEY="pgbouncer-secret-key-0123456789",
        DATABASE_URL=behind_pgbouncer.render_as_string(hide_password=False),
        DATABASE_POOL_MODE="transaction",
        REDIS_URL=redis_url,
        SMTP_URL=sink.url,
        BASE_URL=base,
        CELERY_QUEUE=f"pgbouncer-{os.getpid()}",
        SWEEP_SECONDS="1",
    )

    def flask(*args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [str(BIN / "flask"), "--app", "service", *args],
            env=env,
            cwd=tmp_path,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    flask("db", "upgrade")  # the migrations through the pooler too: each runs in a transaction
    flask("publisher", "create", PUBLISHER, "--password-stdin", stdin=PASSWORD + "\n")
    token = flask("token", "create", PUBLISHER).strip()

    logs = {name: tmp_path / f"{name}.log" for name in ("web", "worker", "beat")}
    commands = {
        "web": [str(BIN / "gunicorn"), "service:create_app()", f"--bind=127.0.0.1:{port}"],
        "worker": [str(BIN / "celery"), "-A", "workers", "worker", "--concurrency=4"],
        "beat": [str(BIN / "celery"), "-A", "workers", "beat", f"--schedule={tmp_path}/beat"],
    }
    processes = []
    try:
        for name, command in commands.items():
            with logs[name].open("wb") as log:
                processes.append(
                    subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log)
                )
        wait_for_http(base + "/")

        reader = Reader(base)
        reader.post_form("/subscribe", reader.get("/"), email=READER)
        confirm_mail = mail_to(sink, READER)
        body = confirm_mail.message.get_body(("plain",)).get_content()
        link = re.search(r"http://127\.0\.0\.1:\d+(/confirm/[A-Za-z0-9._\-]+)", body)
        assert link, "no confirm link in the mail"
        page = reader.get(link[1])
        reader.post_form(link[1], page)

        release = api(base, "POST", "/api/v1/releases", token, {
            "title": TITLE, "summary": "Transaction pooling", "body": "Sent through it.",
            "language": "en", "publish": True,
        })  # fmt: skip
        deadline = time.monotonic() + 90
        address = f"/api/v1/releases/{release['id']}"
        while api(base, "GET", address, token)["delivery"]["state"] != "sent":
            assert time.monotonic() < deadline, logs["worker"].read_text()[-3000:]
            time.sleep(0.3)
        assert mail_to(sink, READER, TITLE).recipients == (READER,)
        readers_open(base + f"/releases/{release['slug']}", TITLE)
    finally:
        stop(processes)
        sink.stop()
    for name, log in logs.items():
        assert "prepared statement" not in log.read_text(), f"{name}: {log.read_text()[-3000:]}"


def readers_open(url: str, title: str, readers: int = 4, visits: int = 15) -> None:
    """Readers open the release at once, again and again: the web's connections each run its
    queries more than five times, so that psycopg would prepare them (prepare_threshold) and,
    through one pooler, meet another connection's statements of the same name."""

    def visit(_: int) -> None:
        for _ in range(visits):
            with urllib.request.urlopen(url, timeout=10) as response:
                assert title in response.read().decode()

    with ThreadPoolExecutor(readers) as pool:
        list(pool.map(visit, range(readers)))


def api(base: str, method: str, path: str, token: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        base + path,
        None if body is None else json.dumps(body).encode(),
        {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())
