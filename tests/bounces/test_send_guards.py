"""A send that draws too many complaints or hard bounces pauses itself; a resume goes on."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.app_state import session_scope
from service.domain import releases, send_guards
from service.domain.bounce_policy import take
from service.domain.refusals import Reply, Stage
from service.domain.send_guards import Guard
from service.models import (
    Delivery,
    Release,
    ReleaseStatus,
    Subscriber,
    SubscriberStatus,
    Suppression,
)
from service.sending.ledger import Recipient, refusal_report
from tests.bounces.guard_figures import LIMITS, NOW, report, sending_release
from tests.pipeline.helpers import api_token


@pytest.mark.parametrize(
    ("sent", "complaints", "tripped"),
    [(299, 2, False), (1000, 3, False), (1000, 4, True), (300, 1, True)],
    ids=["too-few-delivered-to-judge", "at-the-limit", "above-the-limit", "300-and-one"],
)
def test_complaints_above_the_limit_pause_the_send_once_enough_were_delivered(
    session: Session, sent: int, complaints: int, tripped: bool
) -> None:
    release_id, readers = sending_release(session, sent=sent)
    for subscriber_id in readers[:complaints]:
        report(session, release_id, subscriber_id, "complaint")
    guard = send_guards.check(session, release_id, LIMITS)
    release = session.get(Release, release_id)
    assert release is not None
    if tripped:
        assert guard is Guard.COMPLAINTS
        assert release.status is ReleaseStatus.PAUSED
        assert release.pause_reason is not None and "COMPLAINT_RATE_LIMIT" in release.pause_reason
    else:
        assert guard is None and release.status is ReleaseStatus.SENDING


def refused_at_once(session: Session, release_id: int, subscriber_id: int, reply: str) -> None:
    """As the batch's ledger takes a refusal during the SMTP conversation (SqlLedger.fail)."""
    delivery = (
        session.query(Delivery).filter_by(release_id=release_id, subscriber_id=subscriber_id).one()
    )
    recipient = Recipient(delivery.id, subscriber_id, "uid", "reader@mail.example", "nb")
    take(session, refusal_report(recipient, Reply(550, reply, Stage.RCPT)), now=NOW)


def test_hard_bounces_refused_at_once_and_reported_later_count_together(
    session: Session,
) -> None:
    release_id, readers = sending_release(session, sent=290, failed=10)
    for subscriber_id in readers[290:]:
        refused_at_once(session, release_id, subscriber_id, "5.1.1 No such user")
    assert send_guards.check(session, release_id, LIMITS) is None  # 10 of 300
    for subscriber_id in readers[:6]:
        report(session, release_id, subscriber_id, "failed", "5.1.1")
    assert send_guards.check(session, release_id, LIMITS) is Guard.BOUNCES  # 16 of 300


def test_refusals_of_the_message_pause_the_send_and_blame_no_reader(session: Session) -> None:
    release_id, readers = sending_release(session, sent=970, failed=30)
    for subscriber_id in readers[970:]:  # refused during the send, as the ledger takes them
        refused_at_once(session, release_id, subscriber_id, "5.7.1 Message rejected as spam")
    for subscriber_id in readers[:20]:  # and bounced with 5.7.1 after the relay took them
        report(session, release_id, subscriber_id, "failed", "5.7.1")
    assert send_guards.check(session, release_id, LIMITS) is None  # 50 of 1,000: at the limit
    report(session, release_id, readers[20], "failed", "5.7.1")
    assert send_guards.check(session, release_id, LIMITS) is Guard.REFUSALS
    release = session.get(Release, release_id)
    assert release is not None and release.status is ReleaseStatus.PAUSED
    assert release.pause_reason is not None
    assert release.pause_reason.startswith("Refusals of the message: 51 of 1000")
    assert set(session.scalars(select(Subscriber.status))) == {SubscriberStatus.CONFIRMED}
    assert set(session.scalars(select(Subscriber.bounce_score))) == {0}
    assert session.scalar(select(func.count()).select_from(Suppression)) == 0


def test_a_resume_waives_the_guard_that_paused_but_not_the_other(session: Session) -> None:
    release_id, readers = sending_release(session, sent=1000)
    for subscriber_id in readers[:4]:
        report(session, release_id, subscriber_id, "complaint")
    assert send_guards.check(session, release_id, LIMITS) is Guard.COMPLAINTS
    releases.resume(session, release_id)
    for subscriber_id in readers[4:10]:
        report(session, release_id, subscriber_id, "complaint")
    assert send_guards.check(session, release_id, LIMITS) is None
    for subscriber_id in readers[10:70]:
        report(session, release_id, subscriber_id, "failed", "5.1.1")
    assert send_guards.check(session, release_id, LIMITS) is Guard.BOUNCES
    release = session.get(Release, release_id)
    assert release is not None and release.status is ReleaseStatus.PAUSED


def test_the_desk_and_the_api_show_the_counts_and_say_why_a_guard_paused(
    app: Flask, desk: FlaskClient
) -> None:
    with app.app_context(), session_scope() as session:
        release_id, readers = sending_release(session, sent=1000)
        for subscriber_id in readers[:4]:
            report(session, release_id, subscriber_id, "complaint")
        report(session, release_id, readers[4], "failed", "5.1.1")
        assert send_guards.check(session, release_id, LIMITS) is Guard.COMPLAINTS

    page = desk.get(f"/admin/releases/{release_id}/send")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="stat-complained">4<' in html and 'id="stat-bounced">1<' in html
    reason = html.split('id="send-paused-reason"')[1].split("</p>")[0]
    assert "søppelpost" in reason and "0,3" in reason  # the desk speaks bokmål first
    progress = desk.get(f"/admin/releases/{release_id}/progress.json").get_json()
    assert (progress["pause_guard"], progress["complained"], progress["bounced"]) == (
        "complaints",
        4,
        1,
    )

    token = api_token(app)
    answer = desk.get(
        f"/api/v1/releases/{release_id}", headers={"Authorization": f"Bearer {token}"}
    )
    delivery = answer.get_json()["delivery"]
    assert (delivery["state"], delivery["complained"], delivery["bounced"]) == ("paused", 4, 1)
    assert "COMPLAINT_RATE_LIMIT" in delivery["pause_reason"]
