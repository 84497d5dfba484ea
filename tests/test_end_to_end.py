"""The reader's whole journey on the real stack: API → sink → confirm → welcome → one-click."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from service.app_state import get_database
from service.mailsink import MailSink
from service.models import Subscriber, SubscriberStatus
from tests.conftest import link_in


def status_of(app: Flask, email: str) -> SubscriberStatus:
    with app.app_context(), get_database().session_scope() as session:
        subscriber = session.scalar(select(Subscriber).where(Subscriber.email == email))
        assert subscriber is not None
        return subscriber.status


def test_subscribe_confirm_and_one_click_unsubscribe(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None
) -> None:
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en-GB,en;q=0.8"
    answer = client.post(
        "/api/v1/subscriptions", json={"email": "Reader@Mail.example", "language": "en"}
    )
    assert answer.status_code == 202
    assert answer.get_json() == {"status": "pending"}

    confirmation = sink.handler.wait_for(1)[0]
    assert confirmation.recipients == ("reader@mail.example",)
    message = confirmation.message
    assert "Confirm your subscription" in str(message["Subject"])
    confirm_path = link_in(message.get_body(("plain",)).get_content(), "confirm")
    assert confirm_path in message.get_body(("html",)).get_content()

    page = client.get(confirm_path)
    assert page.status_code == 200
    assert 'method="post"' in page.text
    assert status_of(app, "reader@mail.example") is SubscriberStatus.PENDING  # GET changes nothing

    confirmed = client.post(confirm_path)  # the token in the URL is the credential
    assert confirmed.status_code == 200
    assert "Subscription confirmed" in confirmed.text
    assert status_of(app, "reader@mail.example") is SubscriberStatus.CONFIRMED

    welcome = sink.handler.wait_for(2)[1].message
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    header_url = str(welcome["List-Unsubscribe"]).strip("<>")
    unsubscribe_path = link_in(welcome.get_body(("plain",)).get_content(), "unsubscribe")
    assert header_url == "http://press.example" + unsubscribe_path

    # What a mail provider does: a bare POST, no cookie, no CSRF token.
    one_click = app.test_client(use_cookies=False)
    for _ in range(2):  # idempotent
        answer = one_click.post(
            unsubscribe_path,
            data="List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )
        assert answer.status_code == 200
        assert status_of(app, "reader@mail.example") is SubscriberStatus.UNSUBSCRIBED
