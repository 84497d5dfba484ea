"""The suppression list through the API: what is on it and why, and lifting an entry, which
takes a note and is kept."""

from __future__ import annotations

from urllib.parse import quote

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from service.app_state import session_scope
from service.db import utcnow
from service.domain import subscriptions
from service.domain.bounce_policy import Report, take
from service.models import (
    ReportDoor,
    Subscriber,
    SubscriberStatus,
    SuppressionLift,
    SuppressionReason,
)
from tests.pipeline.helpers import add_subscribers, api_token


def report(app: Flask, email: str, action: str, status: str | None = None) -> None:
    with app.app_context(), session_scope() as session:
        take(
            session,
            Report(ReportDoor.GENERIC, action, status, address=email, address_vouched=True),
            now=utcnow(),
        )


def status_of(app: Flask, email: str) -> SubscriberStatus | None:
    with app.app_context(), session_scope() as session:
        return session.scalar(select(Subscriber.status).where(Subscriber.email == email))


def test_the_list_says_why_each_address_is_on_it_and_keeps_no_address_of_an_erasure(
    app: Flask, client: FlaskClient
) -> None:
    add_subscribers(app, ["dead@mail.example", "angry@mail.example", "gone@mail.example"])
    report(app, "dead@mail.example", "failed", "5.1.1")
    report(app, "angry@mail.example", "complaint")
    with app.app_context(), session_scope() as session:
        gone = subscriptions.find_by_email(session, "gone@mail.example")
        assert gone is not None
        subscriptions.erase(session, gone, now=utcnow())
    headers = {"Authorization": f"Bearer {api_token(app)}"}

    answer = client.get("/api/v1/suppressions", headers=headers)

    assert answer.status_code == 200
    items = answer.get_json()["items"]
    assert [(i["email"], i["reason"]) for i in items] == [
        ("dead@mail.example", "bounced"),
        ("angry@mail.example", "complained"),
        (None, "erased"),
    ]
    assert client.get("/api/v1/suppressions").status_code == 401


def test_lifting_takes_a_note_and_gives_a_bounced_reader_back_but_not_a_complainer(
    app: Flask, client: FlaskClient
) -> None:
    add_subscribers(app, ["dead@mail.example", "angry@mail.example"])
    report(app, "dead@mail.example", "failed", "5.1.1")
    report(app, "angry@mail.example", "complaint")
    headers = {"Authorization": f"Bearer {api_token(app)}"}
    path = "/api/v1/suppressions/" + quote("dead@mail.example")

    no_note = client.delete(path, headers=headers)
    assert no_note.status_code == 422
    assert status_of(app, "dead@mail.example") is SubscriberStatus.BOUNCED

    lifted = client.delete(f"{path}?note=Mailbox+restored+by+IT", headers=headers)
    assert lifted.status_code == 204
    assert status_of(app, "dead@mail.example") is SubscriberStatus.CONFIRMED
    again = client.delete(f"{path}?note=again", headers=headers)
    assert again.status_code == 404
    # An erased entry's email is null: a DELETE of "null" finds nothing, it is no bad address.
    assert client.delete("/api/v1/suppressions/null?note=x", headers=headers).status_code == 404

    path = "/api/v1/suppressions/" + quote("angry@mail.example")
    assert client.delete(f"{path}?note=asked+by+phone", headers=headers).status_code == 204
    assert status_of(app, "angry@mail.example") is SubscriberStatus.UNSUBSCRIBED

    with app.app_context(), session_scope() as session:
        lifts = session.scalars(select(SuppressionLift).order_by(SuppressionLift.id)).all()
        assert [(x.reason, x.note) for x in lifts] == [
            (SuppressionReason.BOUNCED, "Mailbox restored by IT"),
            (SuppressionReason.COMPLAINED, "asked by phone"),
        ]
        assert all(x.lifted_by_id is not None for x in lifts)
