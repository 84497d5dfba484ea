"""The whole loop with a real worker: a release to 1,000 readers, the world outside answers
20 copies with a bounce and 2 with a complaint (as `make run`'s sink does, service/
dev_reports.py) through the bounce server's SMTP door, and the next release goes to neither."""

from __future__ import annotations

import smtplib

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from service.app_state import session_scope
from service.bounce_server import BounceHandler, controller
from service.db import utcnow
from service.dev_reports import report_for
from service.dispatch import ring
from service.domain import incoming_reports, send_guards
from service.domain.bounce_policy import Report, take
from service.embedded_redis import free_port
from service.mailsink import MailSink
from service.models import BounceReport, ReportDoor
from service.sending.envelope import EnvelopeSenders
from service.task_names import TaskName
from tests.pipeline.helpers import add_subscribers, api_token, publish, release_state, wait_until

BOUNCING = [f"gone{n}@bounce.example" for n in range(20)]
COMPLAINING = ["angry0@complaint.example", "angry1@complaint.example"]
FINE = [f"reader{n}@mail.example" for n in range(978)]


def reports(app: Flask) -> int:
    with app.app_context(), session_scope() as session:
        return session.scalar(select(func.count()).select_from(BounceReport)) or 0


def test_bounces_and_complaints_come_back_and_the_next_release_skips_those_readers(
    app: Flask, desk: FlaskClient, sink: MailSink, worker: None
) -> None:
    client = desk  # signed in to the desk; the API calls carry their bearer token
    token = api_token(app)
    add_subscribers(app, [*FINE, *BOUNCING, *COMPLAINING])
    first = publish(client, token)
    wait_until(lambda: len(sink.handler.received) >= 1000, timeout=180, what="the first send")

    verp = EnvelopeSenders.from_settings(app.extensions["pressroom.settings"]).verp
    assert verp is not None

    def store(data: bytes, recipients: list[str]) -> int:
        with app.app_context(), session_scope() as session:
            return incoming_reports.store(session, data, recipients, now=utcnow())

    def ring_worker(report_id: int) -> bool:
        with app.app_context():
            return ring(TaskName.TAKE_REPORT, report_id)

    port = free_port()
    server = controller(
        BounceHandler(verp.accepts, store, ring_worker), host="127.0.0.1", port=port
    )
    server.start()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as bounce_door:
            for mail in sink.handler.received:
                [recipient] = mail.recipients
                report = report_for(recipient, mail.mail_from, mail.raw)
                if report is not None:
                    bounce_door.sendmail("", [mail.mail_from], report)
        wait_until(lambda: reports(app) == 22, timeout=60, what=lambda: f"{reports(app)} of 22")
    finally:
        server.stop()

    delivery = release_state(client, token, first["id"])["delivery"]
    assert (delivery["state"], delivery["sent"]) == ("sent", 1000)
    assert (delivery["bounced"], delivery["complained"]) == (20, 2)
    progress = client.get(f"/admin/releases/{first['id']}/progress.json").get_json()
    assert (progress["bounced"], progress["complained"]) == (20, 2)

    sink.handler.clear()
    second = publish(client, token, title="Vostok 2")
    wait_until(
        lambda: release_state(client, token, second["id"])["delivery"]["state"] == "sent",
        timeout=180,
        what="the second send",
    )
    assert sorted(r for mail in sink.handler.received for r in mail.recipients) == sorted(FINE)


def test_the_complaint_guard_pauses_a_send_and_a_resume_finishes_it_once_for_everyone(
    app: Flask, desk: FlaskClient, sink: MailSink, worker: None
) -> None:
    token = api_token(app)
    readers = [f"reader{n}@mail.example" for n in range(1000)]
    add_subscribers(app, readers)
    settings = app.extensions["pressroom.settings"]
    app.extensions["pressroom.settings"] = settings.replace(send_rate=100.0)
    try:
        release = publish(desk, token)
        wait_until(lambda: len(sink.handler.received) >= 450, timeout=120, what="450 sent")
        with app.app_context(), session_scope() as session:
            taken = [
                take(
                    session,
                    Report(ReportDoor.GENERIC, "complaint", address=a, address_vouched=True,
                           message_id=_message_id(sink, a)),
                    now=utcnow(),
                )
                for a in readers[:2]
            ]  # fmt: skip
            incoming_reports.guard_releases(
                session, taken, send_guards.Limits.from_settings(settings)
            )
        wait_until(
            lambda: release_state(desk, token, release["id"])["delivery"]["state"] == "paused",
            timeout=60,
            what="paused by the guard",
        )
        delivery = release_state(desk, token, release["id"])["delivery"]
        assert "COMPLAINT_RATE_LIMIT" in str(delivery["pause_reason"])
        assert delivery["sent"] < 1000
        answer = desk.post(
            f"/api/v1/releases/{release['id']}/resume", headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 202, answer.get_data(as_text=True)
        wait_until(
            lambda: release_state(desk, token, release["id"])["delivery"]["state"] == "sent",
            timeout=120,
            what="sent after the resume",
        )
    finally:
        app.extensions["pressroom.settings"] = settings
    got = sorted(r for mail in sink.handler.received for r in mail.recipients)
    assert got == sorted(readers)  # each once: the two who complained had theirs already


def _message_id(sink: MailSink, address: str) -> str:
    return next(m.message["Message-ID"] for m in sink.handler.received if address in m.recipients)
