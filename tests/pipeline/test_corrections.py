"""A correction: threaded to the original in each reader's mail client, and sent to nobody who
missed the original (real worker, real SMTP sink, the raw headers as they arrived)."""

from __future__ import annotations

import re
from collections import Counter
from email import message_from_bytes, policy

from flask import Flask
from flask.testing import FlaskClient

from service.mailsink import MailSink
from service.models import SubscriberStatus
from tests.pipeline.helpers import add_subscribers, api_token, publish, release_state, wait_until

ORIGINAL_TITLE = "Statsbudsjettet for 2027"


def raw_header(raw: bytes, name: str) -> str | None:
    """A header as the bytes carried it, unfolded (RFC 5322 §2.2.3), or None."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    found = re.search(rf"^{name}:(.*(?:\r\n[ \t].*)*)", head, re.MULTILINE | re.IGNORECASE)
    return None if found is None else re.sub(r"\r\n([ \t])", r"\1", found.group(1)).strip()


def sent(client: FlaskClient, token: str, release_id: object) -> bool:
    return release_state(client, token, release_id)["delivery"]["state"] == "sent"


def test_a_correction_threads_to_the_original_and_goes_to_nobody_who_missed_it(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None
) -> None:
    token = api_token(app)
    add_subscribers(app, ["nb1@mail.example", "nb2@mail.example"], topics=("budget",))
    add_subscribers(app, ["en@mail.example"], language="en")  # every topic
    add_subscribers(app, ["sport@mail.example"], topics=("sport",))  # not the original's
    add_subscribers(app, ["pending@mail.example"], status=SubscriberStatus.PENDING)

    original = publish(client, token, title=ORIGINAL_TITLE, topics=["budget"])
    wait_until(lambda: sent(client, token, original["id"]), what="the original sent")
    got_original = {"nb1@mail.example", "nb2@mail.example", "en@mail.example"}
    first = list(sink.handler.received)
    assert {r for mail in first for r in mail.recipients} == got_original
    original_ids = {
        mail.recipients[0]: raw_header(mail.raw, "Message-ID") for mail in first
    }  # as sent, per reader
    assert len(set(original_ids.values())) == 3

    # Readers who come later, or whose confirmation came after the original went out.
    add_subscribers(app, ["late@mail.example"])
    add_subscribers(app, ["late-budget@mail.example"], topics=("budget",))

    correction = publish(
        client,
        token,
        title="Statsbudsjettet for 2027: rettet tall for forsvaret",
        corrects=original["id"],
        topics=["budget"],
    )
    assert correction["corrects"] == original["id"]
    wait_until(lambda: sent(client, token, correction["id"]), what="the correction sent")
    second = sink.handler.received[len(first) :]
    received = Counter(r for mail in second for r in mail.recipients)
    assert set(received) == got_original, "a reader who missed the original got the correction"
    assert max(received.values()) == 1
    delivery = release_state(client, token, correction["id"])["delivery"]
    assert (delivery["total"], delivery["sent"], delivery["skipped"]) == (3, 3, 0)

    for mail in second:
        reader = mail.recipients[0]
        parent = original_ids[reader]
        assert raw_header(mail.raw, "In-Reply-To") == parent
        assert raw_header(mail.raw, "References") == parent
        assert raw_header(mail.raw, "Message-ID") not in original_ids.values()
        message = message_from_bytes(mail.raw, policy=policy.default)
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        # No English version: the English reader gets the Norwegian one, in its words too.
        assert str(message["Subject"]).startswith("Rettelse: Statsbudsjettet for 2027: rettet")
        assert f"Rettelse til: {ORIGINAL_TITLE}" in " ".join(text.split())
        assert f"/releases/{original['slug']}" in html


def test_a_correction_of_a_correction_threads_to_the_one_it_corrects(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None
) -> None:
    token = api_token(app)
    add_subscribers(app, ["reader@mail.example"], language="en")
    original = publish(client, token, title="First", translations={"en": {"title": "First EN"}})
    wait_until(lambda: sent(client, token, original["id"]), what="the original sent")
    first = publish(
        client,
        token,
        title="Andre",
        corrects=original["id"],
        translations={"en": {"title": "Second"}},
    )
    wait_until(lambda: sent(client, token, first["id"]), what="the first correction sent")
    second = publish(client, token, title="Third", corrects=first["id"])
    wait_until(lambda: sent(client, token, second["id"]), what="the second correction sent")
    mails = sink.handler.received
    assert [list(m.recipients) for m in mails] == [["reader@mail.example"]] * 3
    ids = [raw_header(m.raw, "Message-ID") for m in mails]
    assert raw_header(mails[1].raw, "In-Reply-To") == ids[0]
    assert raw_header(mails[2].raw, "In-Reply-To") == ids[1]
    english = message_from_bytes(mails[1].raw, policy=policy.default)
    assert str(english["Subject"]) == "Correction: Second"  # the reader's language
    text = english.get_body(("plain",)).get_content()
    assert "Correction to: First EN" in " ".join(text.split())
