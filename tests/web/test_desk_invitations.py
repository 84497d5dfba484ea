"""Confirmation invitations from the desk (issue 10, item 9): imported readers still pending get
the signup's confirmation email, in their language, through a real Celery worker and SMTP sink,
at most once per CONFIRM_TTL and at SEND_RATE; suppressed, unsubscribed, bounced, confirmed and
form-signup readers never."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from service.app_state import get_database
from service.db import utcnow
from service.domain import invitations, subscriptions
from service.domain.tokens import CONFIRM_TTL
from service.mailsink import MailSink
from service.models import Subscriber, SubscriberStatus, SuppressionReason
from tests.conftest import PENDING_EN, PENDING_NB, csrf_token
from tests.helpers import settings_changed
from tests.pipeline.helpers import add_subscribers
from tests.web.helpers import INVITE, LIST, click, recipients, run_sweep, settled, text_of, waiting
from workers.tasks import send_invitations


@pytest.fixture
def desk(desk: FlaskClient, worker: None) -> FlaskClient:
    """The desk (tests/conftest.py), with a worker sending the invitations."""
    return desk


def test_the_page_offers_the_invitation_with_a_count_and_what_it_does(
    desk: FlaskClient, readers: None
) -> None:
    page = desk.get(f"{LIST}?lang=en")
    text = text_of(page)
    assert "3 imported readers are waiting for confirmation" in text
    assert "Send the confirmation email to 3 readers" in text
    assert "in their own language, with a link that works for 7 days" in text
    assert "Nobody is sent it more than once in 7 days" in text
    form = re.search(r'<form method="post" action="/admin/subscribers/invite"[^>]*>(.*?)</form>',
                     page.text, re.S)  # fmt: skip
    assert form and 'name="csrf_token"' in form.group(1)
    norsk = text_of(desk.get(f"{LIST}?lang=nb"))
    assert "3 importerte lesere venter på bekreftelse" in norsk


def test_one_click_sends_each_pending_reader_one_confirmation_email_in_their_language(
    app: Flask, desk: FlaskClient, sink: MailSink, readers: None
) -> None:
    page = click(desk)
    assert "The confirmation email is on its way to 3 readers." in page
    mails = settled(app, sink, 3)
    assert recipients(mails) == sorted(PENDING_NB + PENDING_EN)
    subjects = {mail.recipients[0]: mail.message["Subject"] for mail in mails}
    assert subjects["kari@mail.example"].startswith("Bekreft abonnementet ditt")
    assert subjects["jane@mail.example"].startswith("Confirm your subscription")
    # The signup's link: it confirms the reader.
    body = next(m for m in mails if m.recipients == ("jane@mail.example",)).message
    text = body.get_body(preferencelist=("plain",)).get_content()
    token = re.search(r"http://press\.example/confirm/(\S+)", text).group(1)
    with app.app_context(), get_database().session_scope() as session:
        signer = app.extensions["pressroom.signer"]
        subscriptions.confirm(session, signer, token, now=utcnow())
        jane = subscriptions.find_by_email(session, "jane@mail.example")
        assert jane is not None and jane.status is SubscriberStatus.CONFIRMED

    shown = text_of(desk.get(f"{LIST}?lang=en"))
    assert "Last invited: 3 readers on" in shown
    assert "They can be invited again from" in shown
    assert "Send the confirmation email to" not in shown  # nobody left to invite now


def test_a_second_click_within_confirm_ttl_sends_nothing(
    app: Flask, desk: FlaskClient, sink: MailSink, readers: None
) -> None:
    click(desk)
    assert len(settled(app, sink, 3)) == 3
    # Forged: the page no longer shows the button, but a second POST may still come.
    page = desk.get(f"{LIST}?lang=en")
    again = desk.post(INVITE, data={"csrf_token": csrf_token(page.text)})
    assert again.status_code == 303
    assert "Nobody was invited" in text_of(desk.get(LIST))
    time.sleep(1.0)
    assert len(sink.handler.received) == 3


def test_readers_are_invited_again_once_confirm_ttl_has_passed(
    app: Flask, desk: FlaskClient, sink: MailSink, readers: None
) -> None:
    click(desk)
    settled(app, sink, 3)
    sink.handler.clear()
    with app.app_context(), get_database().session_scope() as session:
        session.execute(
            update(Subscriber)
            .where(Subscriber.invited_at.is_not(None))
            .values(invited_at=utcnow() - CONFIRM_TTL - timedelta(seconds=1))
        )
    assert "on its way to 3 readers" in click(desk)
    assert recipients(settled(app, sink, 3)) == sorted(PENDING_NB + PENDING_EN)


def test_an_invitation_without_csrf_token_changes_nothing(
    app: Flask, desk: FlaskClient, sink: MailSink, readers: None
) -> None:
    for token in ("", "forged"):
        answer = desk.post(INVITE, data={"csrf_token": token})
        assert answer.status_code == 400
    assert waiting(app) == 0
    time.sleep(0.5)
    assert sink.handler.received == []


def test_an_invitation_needs_a_login(app: Flask, client: FlaskClient, readers: None) -> None:
    token = csrf_token(client.get("/admin/login").text)
    answer = client.post(INVITE, data={"csrf_token": token})
    assert answer.status_code in (302, 303)
    assert "/admin/login" in answer.headers["Location"]
    assert waiting(app) == 0


def test_invitations_take_their_turn_under_send_rate(
    app: Flask, desk: FlaskClient, sink: MailSink
) -> None:
    emails = [f"reader{n}@mail.example" for n in range(10)]
    add_subscribers(app, emails, status=SubscriberStatus.PENDING)
    bucket = redis.Redis.from_url(app.extensions["pressroom.redis_url"])
    bucket.delete("pressroom:send-rate")
    with settings_changed(app, send_rate=5.0):
        started = time.monotonic()
        click(desk)
        assert recipients(sink.handler.wait_for(10, timeout=30)) == sorted(emails)
        elapsed = time.monotonic() - started
    # A burst of 5, then one every 0.2 s: the shared bucket of release sends.
    assert elapsed >= 0.8
    assert bucket.exists("pressroom:send-rate")
    bucket.close()


def test_a_click_with_the_broker_down_is_sent_by_the_sweep(
    app: Flask, desk: FlaskClient, sink: MailSink, readers: None, broker_down: None
) -> None:
    """The round is stored with its click; a failed doorbell delays the emails, never loses them."""
    kept = app.extensions["pressroom.dispatch"]
    assert "on its way to 3 readers" in click(desk)
    assert waiting(app) == 3
    app.extensions["pressroom.dispatch"] = kept
    assert run_sweep(app)["invitations"] == 0  # not yet: the round is younger than a minute
    with app.app_context(), get_database().session_scope() as session:
        session.execute(
            update(Subscriber)
            .where(Subscriber.invited_at.is_not(None))
            .values(invited_at=utcnow() - timedelta(minutes=2))
        )
    assert run_sweep(app)["invitations"] == 1
    assert recipients(settled(app, sink, 3)) == sorted(PENDING_NB + PENDING_EN)
    assert run_sweep(app)["invitations"] == 0


def test_a_reader_suppressed_or_confirmed_after_the_click_is_not_sent_it(
    app: Flask, sink: MailSink
) -> None:
    """The worker looks again before each message: the round is taken back for them."""
    add_subscribers(app, PENDING_NB + PENDING_EN, status=SubscriberStatus.PENDING)
    with app.app_context(), get_database().session_scope() as session:
        assert invitations.invite(session, now=utcnow()) == 3
        subscriptions.suppress(session, PENDING_NB[0], SuppressionReason.BOUNCED, now=utcnow())
        session.execute(
            update(Subscriber)
            .where(Subscriber.email == PENDING_NB[1])
            .values(status=SubscriberStatus.CONFIRMED)
        )
    with app.app_context():
        assert send_invitations() == {"sent": 1, "refused": 0, "skipped": 1}
        with get_database().session_scope() as session:
            rows = {s.email: s for s in session.scalars(select(Subscriber))}
            assert rows[PENDING_NB[0]].invited_at is None  # never sent: not counted as invited
            assert rows[PENDING_EN[0]].invitation_sent_at is not None
            assert invitations.count_invitable(session, now=utcnow()) == 0
    assert recipients(sink.handler.wait_for(1)) == PENDING_EN
