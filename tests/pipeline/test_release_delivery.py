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
        "at_once": len(expected),
        "in_digests": 0,
        "digest_waiting": 0,
        "bounced": 0,
        "complained": 0,
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


def test_an_address_beyond_ascii_goes_out_with_smtputf8(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None
) -> None:
    """Issue 10, item 8: bjørn.ås@example.no is valid (RFC 6531); the test sink, like most
    relays today, offers SMTPUTF8, and the release reaches it with a UTF-8 To line."""
    token = api_token(app)
    add_subscribers(app, ["first@mail.example", "bjørn.ås@example.no", "last@mail.example"])
    release = publish(client, token)
    wait_until(
        lambda: release_state(client, token, release["id"])["delivery"]["state"] == "sent",
        what="state sent",
    )
    received = {r: mail for mail in sink.handler.received for r in mail.recipients}
    assert sorted(received) == ["bjørn.ås@example.no", "first@mail.example", "last@mail.example"]
    assert "To: bjørn.ås@example.no\r\n".encode() in received["bjørn.ås@example.no"].raw
    assert release_state(client, token, release["id"])["delivery"]["failed"] == 0
