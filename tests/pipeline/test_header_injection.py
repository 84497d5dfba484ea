"""A title that looks like an RFC 2047 encoded word reaches every reader as literal text
(issue 9, item 2): through the API, a real worker and a real SMTP server."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from service.app_state import get_database
from service.mailsink import MailSink
from service.models import Release, Subscriber
from tests.pipeline.helpers import (
    add_subscribers,
    api_token,
    assert_fails_alone,
    publish,
    release_state,
    wait_until,
)

TITLE = "=?utf-8?q?Pressemelding=0D=0AReply-To:_svar@angriper.example=0D=0A=0D=0AKropp?="
BCC_TITLE = "=?utf-8?b?SGVpDQpCY2M6IHN0amVsQGFuZ3JpcGVyLmV4YW1wbGUNCg0KS3JvcHA=?="
HEADERS = {
    "To", "Message-ID", "List-Unsubscribe", "From", "Subject", "Date", "List-Id",
    "Feedback-ID", "List-Unsubscribe-Post", "MIME-Version", "Content-Type",
}  # fmt: skip


def test_an_encoded_word_title_arrives_as_literal_text_with_every_header_in_place(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None
) -> None:
    token = api_token(app)
    readers = ["en@mail.example", "to@mail.example"]
    add_subscribers(app, readers)
    publish(client, token, title=TITLE)
    publish(client, token, title=BCC_TITLE)
    mails = sink.handler.wait_for(4)
    assert sorted(r for mail in mails for r in mail.recipients) == sorted(readers * 2)
    subjects = []
    for mail in mails:
        message = message_from_bytes(mail.raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        names = list(message.keys())
        assert sorted(names) == sorted(HEADERS), names
        assert not {"Reply-To", "Bcc", "Cc"} & set(names)
        subjects.append(str(message["Subject"]))
        assert message["To"].addresses[0].addr_spec in readers
        assert str(message["List-Unsubscribe"]).startswith("<http://press.example/unsubscribe/")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.get_content_type() == "multipart/alternative"
        parts = list(message.iter_parts())
        assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
        assert str(message["Subject"]) in parts[0].get_content()
    assert sorted(subjects) == sorted([TITLE, TITLE, BCC_TITLE, BCC_TITLE])


def test_a_stored_title_no_header_may_hold_pauses_the_send_and_blames_no_reader(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None
) -> None:
    # Input refuses C1 controls; a row stored before that (or by hand) may hold one. Its send
    # must stop with a reason instead of failing at every retry and never finishing.
    token = api_token(app)
    add_subscribers(app, ["en@mail.example", "to@mail.example"])
    release = publish(client, token, publish=False)
    with app.app_context(), get_database().session_scope() as session:
        row = session.get(Release, release["id"])
        assert row is not None
        row.title = "Kontroll\x9b31m i tittelen"
    answer = client.post(
        f"/api/v1/releases/{release['id']}/publish", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 202, answer.text
    wait_until(
        lambda: release_state(client, token, release["id"])["delivery"]["state"] == "paused",
        what="state paused",
    )
    assert sink.handler.received == []
    with app.app_context(), get_database().session_scope() as session:
        row = session.get(Release, release["id"])
        assert row is not None and "cannot be written" in (row.pause_reason or "")
        assert session.scalar(select(func.max(Subscriber.bounce_score))) == 0
    delivery = release_state(client, token, release["id"])["delivery"]
    assert (delivery["failed"], delivery["pending"]) == (0, 2)


def test_a_stored_address_that_holds_an_encoded_word_fails_alone(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None
) -> None:
    # Signup refuses "=?" in an address; CPython's parser would decode the encoded word in
    # this local part into a line break. A row written by other means fails that delivery.
    assert_fails_alone(
        app, client, sink, "=?utf-8?q?a=0D=0ABcc=3A_x=40angriper.example?=@mail.example"
    )


def test_no_bare_cr_or_lf_reaches_the_wire(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None
) -> None:
    """A lone CR in a summary or body went out as is inside the quoted-printable part: with a
    dot between two (<CR>.<CR>) it is the SMTP smuggling end of data (RFC 5321 §2.3.8)."""
    import re

    token = api_token(app)
    add_subscribers(app, ["kari@mail.example"])
    release = publish(
        client,
        token,
        title="Smuggling",
        summary="x\r.\rMAIL FROM:<a@angriper.example>\r",
        body="y\r.\rRCPT TO:<b@angriper.example>\r\nDATA\n",
        translations={"en": {"title": "T", "summary": "s\r.\r", "body": "b\r.\rQUIT"}},
    )
    raw = sink.handler.wait_for(1)[0].raw
    assert not re.search(rb"\r(?!\n)|(?<!\r)\n", raw), "a bare CR or LF is on the wire"
    stored = release_state(client, token, release["id"])
    assert "\r" not in str(stored["summary"]) + str(stored["body"])
