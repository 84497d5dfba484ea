"""The suppression list on the desk: what is on it and why, and lifting an entry with a note."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from service.app_state import session_scope
from service.db import utcnow
from service.domain.bounce_policy import Report, take
from service.models import ReportDoor, Subscriber, SubscriberStatus, SuppressionLift
from tests.conftest import csrf_token
from tests.pipeline.helpers import add_subscribers


def bounce(app: Flask, email: str) -> None:
    with app.app_context(), session_scope() as session:
        report = Report(ReportDoor.GENERIC, "failed", "5.1.1", address=email, address_vouched=True)
        take(session, report, now=utcnow())


def test_the_desk_lists_suppressions_and_lifts_one_with_a_note(
    app: Flask, desk: FlaskClient
) -> None:
    add_subscribers(app, ["dead@mail.example"])
    bounce(app, "dead@mail.example")
    page = desk.get("/admin/suppressions")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "dead@mail.example" in html
    token = csrf_token(html)

    no_note = desk.post(
        "/admin/suppressions/lift",
        data={"csrf_token": token, "email": "dead@mail.example", "note": "  "},
    )
    assert no_note.status_code == 422
    assert 'role="alert"' in no_note.get_data(as_text=True)
    unknown = desk.post(
        "/admin/suppressions/lift",
        data={"csrf_token": token, "email": "nobody@mail.example", "note": "why not"},
    )
    assert unknown.status_code == 404

    lifted = desk.post(
        "/admin/suppressions/lift",
        data={"csrf_token": token, "email": "dead@mail.example", "note": "Mailbox is back"},
    )
    assert lifted.status_code == 303
    with app.app_context(), session_scope() as session:
        status = session.scalar(
            select(Subscriber.status).where(Subscriber.email == "dead@mail.example")
        )
        assert status is SubscriberStatus.CONFIRMED
        [lift] = session.scalars(select(SuppressionLift)).all()
        assert lift.note == "Mailbox is back"
    assert "dead@mail.example" not in desk.get("/admin/suppressions").get_data(as_text=True)


def test_lifting_needs_a_csrf_token(app: Flask, desk: FlaskClient) -> None:
    answer = desk.post("/admin/suppressions/lift", data={"email": "dead@mail.example", "note": "x"})
    assert answer.status_code == 400
