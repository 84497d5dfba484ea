"""Provider webhooks over real HTTP (the app's test client): each provider's own signature
scheme; 2xx only for a post that verifies, once; nothing recorded for any other."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from service.app_state import session_scope
from service.models import (
    BounceReport,
    Subscriber,
    SubscriberStatus,
)
from tests.bounces import copies, signing
from tests.bounces.copies import READER
from tests.helpers import settings_changed


@dataclass(frozen=True)
class Copy:
    """A reader's delivered copy of a sending release, as it left."""

    email: str
    envelope_sender: str
    message_id: str
    release_id: int


def delivered(app: Flask, email: str = READER) -> Copy:
    original, release_id = copies.delivered(app, email)
    return Copy(email, original.envelope_sender, original.message_id, release_id)


def status_of(app: Flask, email: str = READER) -> SubscriberStatus:
    with app.app_context(), session_scope() as session:
        return session.scalar(select(Subscriber.status).where(Subscriber.email == email))


def reports(app: Flask) -> int:
    with app.app_context(), session_scope() as session:
        return session.scalar(select(func.count()).select_from(BounceReport)) or 0


def releases_reported(app: Flask) -> list[int | None]:
    with app.app_context(), session_scope() as session:
        return list(session.scalars(select(BounceReport.release_id)))


# One hard bounce of `copy`, as each provider posts it, signed by `sign`'s key or a wrong one.
def generic_post(copy: Copy, wrong: bool = False) -> signing.Signed:
    event = {
        "id": secrets.token_hex(8),
        "type": "bounce",
        "email": copy.email,
        "action": "failed",
        "status": "5.1.1",
        "envelope_sender": copy.envelope_sender,
    }
    return signing.generic(
        [event], secret="wrong-secret-wrong" if wrong else signing.WEBHOOK_SECRET
    )


def mailgun_post(copy: Copy, wrong: bool = False) -> signing.Signed:
    event = {
        "event": "failed",
        "id": secrets.token_hex(8),
        "severity": "permanent",
        "reason": "bounce",
        "recipient": copy.email,
        "envelope": {"sender": copy.envelope_sender},
        "message": {"headers": {"message-id": copy.message_id.strip("<>")}},
        "delivery-status": {"code": 550, "enhanced-code": "5.1.1", "message": "No such user"},
    }
    return signing.mailgun(event, key="key-wrong" if wrong else signing.MAILGUN_KEY)


def sendgrid_post(copy: Copy, wrong: bool = False) -> signing.Signed:
    from cryptography.hazmat.primitives.asymmetric import ec

    event = {
        "email": copy.email,
        "event": "bounce",
        "type": "bounce",
        "status": "5.1.1",
        "reason": "550 5.1.1 The email account does not exist",
        "sg_event_id": secrets.token_hex(8),
        "smtp-id": copy.message_id,
    }
    if wrong:
        return signing.sendgrid([event], key=ec.generate_private_key(ec.SECP256R1()))
    return signing.sendgrid([event])


def postmark_post(copy: Copy, wrong: bool = False) -> signing.Signed:
    record = {
        "RecordType": "Bounce",
        "ID": secrets.randbelow(10**12),
        "Type": "HardBounce",
        "TypeCode": 1,
        "Email": copy.email,
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist",
        # With the webhook's "Include bounce content": the bounce as received, the
        # original's headers in it.
        "Content": (
            "Return-Path: <>\r\nSubject: Undelivered Mail Returned to Sender\r\n\r\n"
            "--b1\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            f"Message-ID: {copy.message_id}\r\nSubject: Vostok\r\n--b1--\r\n"
        ),
    }
    return signing.postmark(record, password="wrong-password!" if wrong else signing.WEBHOOK_SECRET)


def ses_post(copy: Copy, wrong: bool = False) -> signing.Signed:
    from cryptography.hazmat.primitives.asymmetric import rsa

    event = {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {"emailAddress": copy.email, "action": "failed", "status": "5.1.1"}
            ],
            "feedbackId": secrets.token_hex(8),
        },
        "mail": {
            "source": copy.envelope_sender,
            "commonHeaders": {"messageId": copy.message_id},
        },
    }
    fields = {"Message": json.dumps(event)}
    if wrong:
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return signing.sns("Notification", fields, key=other)
    return signing.sns("Notification", fields)


POSTS: dict[str, Callable[..., signing.Signed]] = {
    "generic": generic_post,
    "mailgun": mailgun_post,
    "sendgrid": sendgrid_post,
    "postmark": postmark_post,
    "ses": ses_post,
}


@pytest.fixture
def fetched(app: Flask) -> Iterator[list[str]]:
    """The URLs the app GETs (SNS certificates and confirmations), answered here: this
    machine has no way to Amazon."""
    urls: list[str] = []

    def fetch(url: str) -> bytes:
        urls.append(url)
        return signing.SNS_CERTIFICATE if url == signing.SNS_CERT_URL else b"<ConfirmSubscription/>"

    app.extensions["pressroom.webhook_fetch"] = fetch
    yield urls
    del app.extensions["pressroom.webhook_fetch"]


def post(client: FlaskClient, provider: str, signed: signing.Signed):  # type: ignore[no-untyped-def]
    body, headers = signed
    return client.post(f"/api/v1/webhooks/{provider}", data=body, headers=headers)


@pytest.mark.parametrize("provider", sorted(POSTS))
def test_only_a_signed_post_is_taken_and_only_once(
    app: Flask, client: FlaskClient, fetched: list[str], provider: str
) -> None:
    copy = delivered(app)
    make = POSTS[provider]

    wrong = post(client, provider, make(copy, wrong=True))
    assert wrong.status_code == 401, wrong.get_json()
    assert wrong.get_json()["error"]["code"] == "bad_signature"
    huge = client.post(f"/api/v1/webhooks/{provider}", data=b"[" + b" " * (2 * 1024 * 1024) + b"]")
    assert huge.status_code == 413
    body, headers = make(copy)
    not_json = post(client, provider, (b"\xff" + body[1:], headers))
    assert not_json.status_code in (400, 401)
    assert (reports(app), status_of(app)) == (0, SubscriberStatus.CONFIRMED)

    signed = make(copy)
    taken = post(client, provider, signed)
    assert taken.status_code == 200, taken.get_json()
    assert taken.get_json() == {"taken": 1, "repeats": 0, "ignored": 0}
    assert status_of(app) is SubscriberStatus.BOUNCED
    assert releases_reported(app) == [copy.release_id]  # counted against the release

    replay = post(client, provider, signed)
    assert replay.status_code == 409
    assert reports(app) == 1


def test_an_unknown_provider_or_one_not_set_up_is_not_found(
    app: Flask, client: FlaskClient
) -> None:
    assert client.post("/api/v1/webhooks/sparkpost", data=b"{}").status_code == 404
    with settings_changed(app, mailgun_webhook_signing_key=None):
        answer = post(client, "mailgun", mailgun_post(delivered(app)))
    assert answer.status_code == 404
    assert "MAILGUN_WEBHOOK_SIGNING_KEY" in answer.get_json()["error"]["message"]


def test_a_mailgun_post_signed_long_ago_is_a_replay(app: Flask, client: FlaskClient) -> None:
    body, headers = signing.mailgun({"event": "failed"}, age=3600)
    assert post(client, "mailgun", (body, headers)).status_code == 401


def test_an_sns_subscription_to_our_topic_is_confirmed_and_another_topic_is_refused(
    app: Flask, client: FlaskClient, fetched: list[str]
) -> None:
    confirm = "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=abc"
    fields = {"Message": "You have chosen to subscribe", "SubscribeURL": confirm, "Token": "abc"}
    answer = post(client, "ses", signing.sns("SubscriptionConfirmation", fields))
    assert answer.status_code == 200
    assert answer.get_json()["subscription"] == "confirmed"
    assert confirm in fetched

    body, headers = signing.sns("SubscriptionConfirmation", fields)
    other_topic = body.replace(signing.SES_TOPIC.encode(), b"arn:aws:sns:eu-west-1:999:theirs")
    assert post(client, "ses", (other_topic, headers)).status_code == 401


def test_a_complaint_through_ses_unsubscribes_and_a_not_spam_changes_nothing(
    app: Flask, client: FlaskClient, fetched: list[str]
) -> None:
    copy = delivered(app)
    for feedback_type, expected in (("not-spam", SubscriberStatus.CONFIRMED), ("abuse", None)):
        event = {
            "notificationType": "Complaint",
            "complaint": {
                "complainedRecipients": [{"emailAddress": copy.email}],
                "feedbackId": secrets.token_hex(8),
                "complaintFeedbackType": feedback_type,
            },
            "mail": {
                "source": copy.envelope_sender,
                "commonHeaders": {"messageId": copy.message_id},
            },
        }
        answer = post(client, "ses", signing.sns("Notification", {"Message": json.dumps(event)}))
        assert answer.status_code == 200
        assert status_of(app) is (expected or SubscriberStatus.UNSUBSCRIBED)
