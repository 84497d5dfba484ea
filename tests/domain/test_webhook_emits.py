"""Outgoing webhook events owed by the doors test_webhook_outbox.py does not walk through: a
send paused by a send guard or by the relay halting it, a release published by its schedule
(the sweep), a bounce undone (a suppression lifted, `subscribers unbounce`); and two pauses
racing owe one release.paused. On the real database, committed where two sessions meet."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from service.app_state import get_database, session_scope
from service.db import utcnow
from service.domain import (
    bounce_policy,
    bounces,
    releases,
    send_guards,
    suppressions,
    webhook_endpoints,
)
from service.domain.send_guards import Guard
from service.models import (
    Release,
    ReleaseStatus,
    ReportDoor,
    ReportKind,
    Subscriber,
    SubscriberStatus,
    Suppression,
    WebhookEvent,
)
from service.sending.ledger import SqlLedger
from tests.bounces.guard_figures import LIMITS, report, sending_release
from tests.rows import subscriber_rows
from tests.sending.parts import add_deliveries, add_readers, add_release
from tests.web.helpers import run_sweep

NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def add_endpoint(session: Session, events: list[str]) -> None:
    webhook_endpoints.add(
        session, "https://crm.example/hooks", events, include_address=False, now=NOW
    )


def owed(session: Session, event_type: str) -> list[dict[str, Any]]:
    """The bodies of the events of `event_type` owed, oldest first."""
    rows = session.scalars(
        select(WebhookEvent.body)
        .where(WebhookEvent.event_type == event_type)
        .order_by(WebhookEvent.id)
    )
    return [json.loads(body) for body in rows]


def test_a_send_guard_pausing_a_send_owes_release_paused_once(session: Session) -> None:
    add_endpoint(session, ["release.paused"])
    release_id, readers = sending_release(session, sent=300)
    report(session, release_id, readers[0], "complaint")  # 1 of 300: above 0.3 %
    assert send_guards.check(session, release_id, LIMITS, now=NOW) is Guard.COMPLAINTS
    assert send_guards.check(session, release_id, LIMITS, now=NOW) is None  # paused already

    (event,) = owed(session, "release.paused")
    paused = event["data"]["release"]
    assert (paused["id"], paused["status"]) == (release_id, "paused")
    assert "COMPLAINT_RATE_LIMIT" in paused["pause_reason"]
    assert event["timestamp"] == "2026-12-01T06:00:00Z"


def test_the_relay_halting_a_send_owes_release_paused_without_the_address_it_quoted(
    app: Flask,
) -> None:
    with app.app_context():
        db = get_database()
        release_id = add_release(db)
        readers = add_readers(db, ["kari@mail.example", "ola@mail.example"])
        add_deliveries(db, release_id, readers)
        with db.session_scope() as session:
            add_endpoint(session, ["release.paused"])
        book = SqlLedger(db.session_scope, owner="a")
        claim = book.claim(release_id, limit=10)
        assert claim is not None
        book.halt(
            release_id,
            claim.recipients[:1],
            claim.recipients[1:],
            reason="554 5.7.1 <kari@mail.example>: Relay access denied",
        )
        with db.session_scope() as session:
            (event,) = owed(session, "release.paused")
            release = session.get(Release, release_id)
            assert release is not None and release.status is ReleaseStatus.PAUSED
    paused = event["data"]["release"]
    assert (paused["id"], paused["status"]) == (release_id, "paused")
    assert "kari@mail.example" not in json.dumps(event)
    assert paused["pause_reason"] == "554 5.7.1 <<address>>: Relay access denied"


def test_two_pauses_racing_owe_one_release_paused_and_keep_the_guards_reason(
    app: Flask,
) -> None:
    """Staff press pause on a page that read the release as sending; a send guard pauses it
    in between. Before the pause was a compare-and-set, the staff's pause paused it again:
    a second release.paused, and the guard's reason wiped."""
    with app.app_context():
        with session_scope() as session:
            add_endpoint(session, ["release.paused"])
            release_id, readers = sending_release(session, sent=300)
            report(session, release_id, readers[0], "complaint")
        staff = get_database().sessionmaker()
        try:
            seen = releases.get_release(staff, release_id)
            assert seen.status is ReleaseStatus.SENDING
            with session_scope() as guard:
                assert send_guards.check(guard, release_id, LIMITS, now=NOW) is Guard.COMPLAINTS
            paused = releases.pause(staff, release_id, now=NOW)
            staff.commit()
            assert paused.status is ReleaseStatus.PAUSED
        finally:
            staff.close()
        with session_scope() as session:
            events = owed(session, "release.paused")
            release = session.get(Release, release_id)
            assert release is not None
            reason, guard_name = release.pause_reason, release.pause_guard
    assert len(events) == 1, "one pause, one event"
    assert reason is not None and "COMPLAINT_RATE_LIMIT" in reason
    assert guard_name == Guard.COMPLAINTS.value
    assert events[0]["data"]["release"]["pause_reason"] == reason


def test_a_staff_pause_of_a_release_paused_already_owes_nothing_more(session: Session) -> None:
    add_endpoint(session, ["release.paused"])
    release_id, _ = sending_release(session, sent=1)
    releases.pause(session, release_id, reason="by hand", now=NOW)
    releases.pause(session, release_id, reason="again", now=NOW)
    (event,) = owed(session, "release.paused")
    assert event["data"]["release"]["pause_reason"] == "by hand"
    release = session.get(Release, release_id)
    assert release is not None and release.pause_reason == "by hand"


def test_a_release_published_by_its_schedule_owes_release_published(app: Flask) -> None:
    with app.app_context(), session_scope() as session:
        add_endpoint(session, ["release.published"])
        release = Release(
            slug="vostok", title="Vostok", language="nb", status=ReleaseStatus.DRAFT, body=""
        )
        release.send_email = False
        session.add(release)
        session.flush()
        releases.schedule(session, release, utcnow() - timedelta(seconds=1))
        release_id = release.id
        assert owed(session, "release.published") == []
    run_sweep(app)
    with app.app_context(), session_scope() as session:
        (event,) = owed(session, "release.published")
        release = session.get(Release, release_id)
        assert release is not None and release.status is ReleaseStatus.PUBLISHED
    published = event["data"]["release"]
    assert (published["id"], published["status"]) == (release_id, "published")
    assert published["published_at"] is not None
    run_sweep(app)
    with app.app_context(), session_scope() as session:
        assert len(owed(session, "release.published")) == 1, "published once"


def bounced_reader(session: Session, email: str) -> Subscriber:
    """A confirmed reader whose address then bounced for good: status bounced, suppressed."""
    (reader_id,) = session.scalars(
        insert(Subscriber).returning(Subscriber.id),
        subscriber_rows([email], status=SubscriberStatus.CONFIRMED, language="nb", now=NOW),
    )
    hard_bounce = bounce_policy.Report(
        ReportDoor.FILE, "failed", "5.1.1", subscriber_id=reader_id, kind=ReportKind.HARD_BOUNCE
    )
    bounce_policy.take(session, hard_bounce, now=NOW)
    reader = session.get(Subscriber, reader_id)
    assert reader is not None and reader.status is SubscriberStatus.BOUNCED
    assert session.scalar(select(Suppression.id).where(Suppression.email == email)) is not None
    return reader


def test_lifting_a_bounce_suppression_owes_subscriber_confirmed(session: Session) -> None:
    reader = bounced_reader(session, "kari@mail.example")
    add_endpoint(session, ["subscriber.confirmed"])
    suppressions.lift(session, reader.email, note="the relay was wrong", by_publisher=None, now=NOW)
    (event,) = owed(session, "subscriber.confirmed")
    assert event["data"]["subscriber"]["uid"] == reader.uid
    assert event["data"]["subscriber"]["status"] == "confirmed"


def test_unbounce_owes_subscriber_confirmed_for_each_reader_restored(session: Session) -> None:
    kari = bounced_reader(session, "kari@mail.example")
    ola = bounced_reader(session, "ola@mail.example")
    add_endpoint(session, ["subscriber.confirmed"])
    since = NOW - timedelta(hours=1)
    assert bounces.unbounce(session, since=since, now=NOW, dry_run=True) == 2
    assert owed(session, "subscriber.confirmed") == [], "a dry run owes nothing"
    assert bounces.unbounce(session, since=since, now=NOW) == 2
    uids = {event["data"]["subscriber"]["uid"] for event in owed(session, "subscriber.confirmed")}
    assert uids == {kari.uid, ola.uid}
    assert bounces.unbounce(session, since=since, now=NOW) == 0
    assert len(owed(session, "subscriber.confirmed")) == 2
