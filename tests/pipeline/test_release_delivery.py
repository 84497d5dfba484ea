"""A published release reaches every matching confirmed reader once, and nobody else."""

from __future__ import annotations

from collections import Counter

from flask import Flask
from flask.testing import FlaskClient

from service.mailsink import MailSink
from service.models import SubscriberStatus
from tests.pipeline.helpers import (
    add_subscribers,
    api_token,
    assert_fails_alone,
    publish,
    release_state,
    wait_until,
)


def test_every_matching_confirmed_reader_gets_it_once_and_nobody_else(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None
) -> None:
    token = api_token(app)
    readers = [f"reader{n}@mail.example" for n in range(300)]
    add_subscribers(app, readers[:250])
    add_subscribers(app, readers[250:], language="en")
    add_subscribers(app, ["space@mail.example"], topics=("space",))
    add_subscribers(app, ["sport@mail.example"], topics=("sport",))
    add_subscribers(app, ["pending@mail.example"], status=SubscriberStatus.PENDING)
    add_subscribers(app, ["left@mail.example"], status=SubscriberStatus.UNSUBSCRIBED)
    add_subscribers(app, ["bounced@mail.example"], status=SubscriberStatus.BOUNCED)

    release = publish(client, token, topics=["space"])
    expected = {*readers, "space@mail.example"}
    wait_until(lambda: len(sink.handler.received) >= len(expected), what="all mail")
    wait_until(
        lambda: release_state(client, token, release["id"])["delivery"]["state"] == "sent",
        what="state sent",
    )
    received = Counter(r for mail in sink.handler.received for r in mail.recipients)
    assert set(received) == expected
    assert max(received.values()) == 1
    delivery = release_state(client, token, release["id"])["delivery"]
    assert delivery == {
        "state": "sent",
        "total": len(expected),
        "sent": len(expected),
        "failed": 0,
        "pending": 0,
        "skipped": 0,
        "pause_reason": None,
    }


def test_release_email_format(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None
) -> None:
    token = api_token(app)
    add_subscribers(app, ["reader@mail.example"])
    publish(client, token)
    mail = sink.handler.wait_for(1)[0]
    raw = mail.raw
    message = mail.message
    assert message.get_content_type() == "multipart/alternative"
    assert str(message["Subject"]) == "60 år siden Jurij Gagarin erobret verdensrommet"
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    header = next(line for line in raw.split(b"\r\n") if line.startswith(b"List-Unsubscribe:"))
    assert header.startswith(b"List-Unsubscribe: <http://press.example/unsubscribe/")
    assert header.endswith(b">")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"] and message["Message-ID"] and message["Date"]
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    url = str(message["List-Unsubscribe"]).strip("<>")
    assert url in html and url in text
    assert "<strong>12. april 1961</strong>" in html
    assert "12. april 1961" in text and "**" not in text  # no Markdown in the text part
    assert "/releases/" in text  # view in browser

    one_click = app.test_client(use_cookies=False)
    answer = one_click.post(
        url.removeprefix("http://press.example"),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status_code == 200


def test_an_address_no_server_can_take_fails_alone_and_the_send_finishes(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None
) -> None:
    # Signup and import refuse a non-ASCII local part; a row written by other means could
    # still hold one, and without SMTPUTF8 no mail server can take it.
    assert_fails_alone(app, client, sink, "blåbær@mail.example")
