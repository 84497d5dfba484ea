"""The doors for report mails: the bounce server (`bounces serve`, a real process and a real
worker), `bounces read`, and the sweep's ring for a report whose ring was lost."""

from __future__ import annotations

import smtplib
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select

from service.app_state import get_database, session_scope
from service.bounce_server import BounceHandler, controller
from service.db import utcnow
from service.domain import incoming_reports
from service.embedded_redis import free_port
from service.models import (
    BounceReport,
    IncomingReport,
    Subscriber,
    SubscriberStatus,
)
from service.sending.outbox import Outbox
from service.sending.report_jobs import ring_waiting_reports
from service.task_names import TaskName
from tests.bounces import copies, formats
from tests.bounces.copies import READER
from tests.cli.helpers import flask
from tests.helpers import BIN, ROOT, clean_env, stop


def delivered(app: Flask, email: str = READER) -> formats.Original:
    return copies.delivered(app, email)[0]


def status_of(app: Flask, email: str = READER) -> SubscriberStatus:
    with app.app_context(), session_scope() as session:
        return session.scalar(select(Subscriber.status).where(Subscriber.email == email))


@pytest.fixture
def bounce_server(app: Flask) -> Iterator[int]:
    """`flask --app service bounces serve` as an operator runs it, on this app's database
    and queue."""
    settings = app.extensions["pressroom.settings"]
    port = free_port()
    env = clean_env(
        SECRET_KEY=settings.secret_key,
        DATABASE_URL=settings.database_url,
        REDIS_URL=app.extensions["pressroom.redis_url"],
        CELERY_QUEUE=settings.task_queue,
        BOUNCE_ADDRESS=settings.bounce_address,
        MAIL_FROM=settings.mail_from,
        BASE_URL=settings.base_url,
    )
    process = subprocess.Popen(
        [str(BIN / "flask"), "--app", "service", "bounces", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"the bounce server did not start: {output}")
            time.sleep(0.1)
    yield port
    stop([process])


def test_the_bounce_server_takes_bounces_for_verp_addresses_and_a_worker_applies_them(
    app: Flask, worker: None, bounce_server: int
) -> None:
    original = delivered(app)
    with smtplib.SMTP("127.0.0.1", bounce_server, timeout=10) as client:
        code, _ = client.ehlo()
        assert code == 250
        client.mail("<>")
        refused, message = client.rcpt("postmaster@press.example")
        assert (refused, message[:5]) == (550, b"5.1.1")
        client.rset()
        client.sendmail(
            "", [original.envelope_sender], formats.postfix(original, original.envelope_sender)
        )
    deadline = time.monotonic() + 20
    while status_of(app) is not SubscriberStatus.BOUNCED:
        assert time.monotonic() < deadline, "the worker did not apply the bounce"
        time.sleep(0.1)
    with app.app_context(), session_scope() as session:
        assert session.scalar(select(func.count()).select_from(IncomingReport)) == 0
        assert session.scalar(select(func.count()).select_from(BounceReport)) == 1


def test_bounces_serve_without_a_bounce_address_says_so_in_one_line() -> None:
    result = subprocess.run(
        [str(BIN / "flask"), "--app", "service", "bounces", "serve"],
        env=clean_env(SECRET_KEY="x" * 32, REDIS_URL="redis://127.0.0.1:1/0"),
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert b"BOUNCE_ADDRESS is not set" in result.stderr
    assert b"Traceback" not in result.stderr


def test_bounces_read_applies_a_report_from_a_file_or_stdin(app: Flask, tmp_path) -> None:
    original = delivered(app)
    path = tmp_path / "bounce.eml"
    path.write_bytes(formats.gmail(original, original.envelope_sender))
    result = flask(app, "bounces", "read", str(path))
    assert result.exit_code == 0, result.output
    assert "Hard bounce (release" in result.output and "suppressed" in result.output
    again = app.test_cli_runner().invoke(
        args=["bounces", "read", "-"], input=formats.gmail(original, original.envelope_sender)
    )
    assert "taken before, nothing changed" in again.output
    assert status_of(app) is SubscriberStatus.BOUNCED


def test_bounces_read_of_an_auto_reply_or_an_empty_file_changes_nothing(
    app: Flask, tmp_path
) -> None:
    original = delivered(app)
    path = tmp_path / "ooo.eml"
    path.write_bytes(formats.out_of_office(original, original.envelope_sender))
    assert "Nothing to do" in flask(app, "bounces", "read", str(path)).output
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    result = flask(app, "bounces", "read", str(empty))
    assert result.exit_code == 1 and "empty" in result.output
    assert status_of(app) is SubscriberStatus.CONFIRMED


def test_the_sweep_rings_again_for_a_report_whose_ring_was_lost(app: Flask) -> None:
    rung: list[tuple[TaskName, tuple[object, ...]]] = []
    with app.app_context(), session_scope() as session:
        old = incoming_reports.store(session, b"x", [], now=utcnow() - timedelta(minutes=5))
        incoming_reports.store(session, b"y", [], now=utcnow())
    with app.app_context():
        database = get_database()
    box = Outbox(
        open_session=database.session_scope,
        redis=None,  # type: ignore[arg-type]
        transport=None,  # type: ignore[arg-type]
        settings=app.extensions["pressroom.settings"],
        composer=None,  # type: ignore[arg-type]
        messages=None,  # type: ignore[arg-type]
        ring=lambda task, *args: rung.append((task, args)) or True,
    )
    assert ring_waiting_reports(box, utcnow()) == 1
    assert rung == [(TaskName.TAKE_REPORT, (old,))]


def test_the_bounce_server_turns_away_connections_past_its_cap_until_one_closes() -> None:
    handler = BounceHandler(lambda address: True, lambda data, recipients: 1, lambda id_: None)
    port = free_port()
    server = controller(handler, host="127.0.0.1", port=port, max_sessions=2)
    server.start()
    try:
        first = smtplib.SMTP("127.0.0.1", port, timeout=10)
        second = smtplib.SMTP("127.0.0.1", port, timeout=10)
        with pytest.raises(smtplib.SMTPConnectError) as turned_away:
            smtplib.SMTP("127.0.0.1", port, timeout=10)
        assert turned_away.value.smtp_code == 421
        assert b"4.3.2" in turned_away.value.smtp_error
        assert second.noop()[0] == 250  # those already in go on
        first.quit()

        def another() -> bool:
            try:
                smtplib.SMTP("127.0.0.1", port, timeout=10).quit()
            except smtplib.SMTPConnectError:
                return False
            return True

        deadline = time.monotonic() + 10
        while not another():
            assert time.monotonic() < deadline, "no room after a session closed"
            time.sleep(0.05)
        second.quit()
    finally:
        server.stop()
        handler.close()
