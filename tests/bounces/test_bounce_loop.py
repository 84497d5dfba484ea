"""The whole loop with a real worker: a release to 1,000 readers, the world outside answers
20 copies with a bounce and 2 with a complaint (as `make run`'s sink does, service/
dev_reports.py) through the bounce server's SMTP door, and the next release goes to neither."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from contextlib import contextmanager

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
from service.models import BounceReport, ReportDoor, Subscriber, SubscriberStatus, Suppression
from service.sending.envelope import EnvelopeSenders
from service.task_names import TaskName
from tests.bounces import formats
from tests.helpers import settings_changed
from tests.pipeline.helpers import (
    add_subscribers,
    api_token,
    publish,
    release_state,
    resume,
    send_state,
    wait_until,
)

BOUNCING = [f"gone{n}@bounce.example" for n in range(20)]
COMPLAINING = ["angry0@complaint.example", "angry1@complaint.example"]
FINE = [f"reader{n}@mail.example" for n in range(978)]


def reports(app: Flask) -> int:
    with app.app_context(), session_scope() as session:
        return session.scalar(select(func.count()).select_from(BounceReport)) or 0


@contextmanager
def bounce_door(app: Flask) -> Iterator[smtplib.SMTP]:
    """The bounce server (`bounces serve`'s handler and controller) on a free port, storing
    into the app's database and ringing its workers; an SMTP client connected to it."""
    verp = EnvelopeSenders.from_settings(app.extensions["pressroom.settings"]).verp
    assert verp is not None

    def store(data: bytes, recipients: list[str]) -> int:
        with app.app_context(), session_scope() as session:
            return incoming_reports.store(session, data, recipients, now=utcnow())

    def ring_worker(report_id: int) -> bool:
        with app.app_context():
            return ring(TaskName.TAKE_REPORT, report_id)

    port = free_port()
    handler = BounceHandler(verp.accepts, store, ring_worker)
    server = controller(handler, host="127.0.0.1", port=port)
    server.start()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as door:
            yield door
    finally:
        server.stop()
        handler.close()


def test_bounces_and_complaints_come_back_and_the_next_release_skips_those_readers(
    app: Flask, desk: FlaskClient, sink: MailSink, worker: None
) -> None:
    client = desk  # signed in to the desk; the API calls carry their bearer token
    token = api_token(app)
    add_subscribers(app, [*FINE, *BOUNCING, *COMPLAINING])
    first = publish(client, token)
    wait_until(lambda: len(sink.handler.received) >= 1000, timeout=180, what="the first send")

    with bounce_door(app) as door:
        for mail in sink.handler.received:
            [recipient] = mail.recipients
            report = report_for(recipient, mail.mail_from, mail.raw)
            if report is not None:
                door.sendmail("", [mail.mail_from], report)
        wait_until(lambda: reports(app) == 22, timeout=60, what=lambda: f"{reports(app)} of 22")

    delivery = release_state(client, token, first["id"])["delivery"]
    assert (delivery["state"], delivery["sent"]) == ("sent", 1000)
    assert (delivery["bounced"], delivery["complained"]) == (20, 2)
    progress = client.get(f"/admin/releases/{first['id']}/progress.json").get_json()
    assert (progress["bounced"], progress["complained"]) == (20, 2)

    sink.handler.clear()
    second = publish(client, token, title="Vostok 2")
    wait_until(
        lambda: send_state(client, token, second["id"]) == "sent",
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
    with settings_changed(app, send_rate=100.0) as settings:
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
            lambda: send_state(desk, token, release["id"]) == "paused",
            timeout=60,
            what="paused by the guard",
        )
        delivery = release_state(desk, token, release["id"])["delivery"]
        assert "COMPLAINT_RATE_LIMIT" in str(delivery["pause_reason"])
        assert delivery["sent"] < 1000
        resume(desk, token, release["id"])
        wait_until(
            lambda: send_state(desk, token, release["id"]) == "sent",
            timeout=120,
            what="sent after the resume",
        )
    got = sorted(r for mail in sink.handler.received for r in mail.recipients)
    assert got == sorted(readers)  # each once: the two who complained had theirs already


def _message_id(sink: MailSink, address: str) -> str:
    return next(m.message["Message-ID"] for m in sink.handler.received if address in m.recipients)


def test_a_content_refusal_reported_for_every_reader_pauses_the_send_and_blames_nobody(
    app: Flask, desk: FlaskClient, sink: MailSink, worker: None
) -> None:
    """The relay takes every copy, and the receiving systems bounce each with 5.7.1 (spam
    content): the refusals guard pauses the send once 300 were attempted; nobody is scored,
    bounced or suppressed; a resume finishes it, each reader once."""
    token = api_token(app)
    readers = [f"reader{n}@mail.example" for n in range(800)]
    add_subscribers(app, readers)
    # Batches of 50 (SEND_RATE x lease / 2): the worker (one task at a time) takes the reports
    # between them, while the send still has 18 s of readers to go, on a busy machine too.
    with settings_changed(app, send_rate=25.0, send_lease_seconds=4):
        release = publish(desk, token)
        wait_until(lambda: len(sink.handler.received) >= 350, timeout=120, what="350 sent")
        with bounce_door(app) as door:
            for mail in list(sink.handler.received)[:350]:
                [recipient] = mail.recipients
                original = formats.Original(
                    recipient, mail.mail_from, str(mail.message["Message-ID"])
                )
                door.sendmail("", [mail.mail_from], formats.postfix(original, mail.mail_from,
                                                                     status="5.7.1"))  # fmt: skip
            wait_until(
                lambda: send_state(desk, token, release["id"]) == "paused",
                timeout=60,
                what=lambda: (
                    f"{reports(app)} reports, "
                    f"{release_state(desk, token, release['id'])['delivery']}"
                ),
            )
        delivery = release_state(desk, token, release["id"])["delivery"]
        assert str(delivery["pause_reason"]).startswith("Refusals of the message: ")
        assert delivery["bounced"] == 0 and delivery["sent"] < len(readers)
        page = desk.get(f"/admin/releases/{release['id']}/send?lang=en").get_data(as_text=True)
        assert "refused the message itself" in page and "No reader is blamed" in page
        with app.app_context(), session_scope() as session:
            assert set(session.scalars(select(Subscriber.status))) == {SubscriberStatus.CONFIRMED}
            assert set(session.scalars(select(Subscriber.bounce_score))) == {0}
            assert session.scalar(select(func.count()).select_from(Suppression)) == 0
        resume(desk, token, release["id"])
        wait_until(
            lambda: send_state(desk, token, release["id"]) == "sent",
            timeout=120,
            what="sent after the resume",
        )
    got = sorted(r for mail in sink.handler.received for r in mail.recipients)
    assert got == sorted(readers)
