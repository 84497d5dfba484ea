"""The ledger's claim, lease and record, on SQLite and on PostgreSQL (TEST_DATABASE_URL): a row
is only ever sent by the worker holding its lease, and what happened to it is recorded once."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from service.db import Database, utcnow
from service.domain import bounce_policy
from service.domain.refusals import Reply, Stage
from service.models import (
    BounceReport,
    Delivery,
    DeliveryStatus,
    Release,
    ReleaseStatus,
    ReportKind,
    Subscriber,
    SubscriberStatus,
)
from service.sending import ledger
from service.sending.ledger import SqlLedger
from tests.sending.parts import add_deliveries, add_readers, add_release

LEASE = timedelta(seconds=60)


def owed(
    db: Database, count: int, *, status: ReleaseStatus = ReleaseStatus.SENDING
) -> tuple[int, list[int]]:
    release_id = add_release(db, status=status)
    readers = add_readers(db, [f"r{i}@mail{i % 3}.example" for i in range(count)])
    return release_id, add_deliveries(db, release_id, readers)


def delivery(session: Session, delivery_id: int) -> Delivery:
    row = session.get(Delivery, delivery_id)
    assert row is not None
    return row


def test_a_claim_leases_due_rows_in_order_and_counts_the_attempt(db: Database) -> None:
    release_id, ids = owed(db, 5)
    now = utcnow()
    with db.session_scope() as session:
        claimed = ledger.claim(session, release_id, owner="a", limit=3, now=now, lease=LEASE)
    assert [c.delivery_id for c in claimed] == ids[:3]
    assert {c.attempts for c in claimed} == {1}
    with db.session_scope() as session:
        for delivery_id in ids[:3]:
            row = delivery(session, delivery_id)
            assert row.status is DeliveryStatus.SENDING and row.lease_owner == "a"
            assert row.lease_expires_at == now + LEASE
        assert delivery(session, ids[3]).status is DeliveryStatus.PENDING


def test_two_owners_never_claim_the_same_row(db: Database) -> None:
    release_id, ids = owed(db, 5)
    with db.session_scope() as first, db.session_scope() as second:
        a = ledger.claim(first, release_id, owner="a", limit=3, now=utcnow())
        first.commit()
        b = ledger.claim(second, release_id, owner="b", limit=3, now=utcnow())
    assert {c.delivery_id for c in a} | {c.delivery_id for c in b} == set(ids)
    assert not {c.delivery_id for c in a} & {c.delivery_id for c in b}


def test_nothing_is_claimed_unless_the_release_is_sending(db: Database) -> None:
    release_id, _ = owed(db, 2, status=ReleaseStatus.PAUSED)
    with db.session_scope() as session:
        assert ledger.claim(session, release_id, owner="a", limit=10, now=utcnow()) == []
    assert SqlLedger(db.session_scope, owner="a").claim(release_id, limit=10) is None


def test_rows_waiting_for_a_retry_are_not_due_yet(db: Database) -> None:
    release_id, ids = owed(db, 2)
    later = utcnow() + timedelta(minutes=5)
    with db.session_scope() as session:
        session.execute(update(Delivery).where(Delivery.id == ids[0]).values(next_attempt_at=later))
    with db.session_scope() as session:
        claimed = ledger.claim(session, release_id, owner="a", limit=10, now=utcnow())
    assert [c.delivery_id for c in claimed] == ids[1:]


def test_only_the_lease_holder_records_a_row_sent(db: Database) -> None:
    release_id, ids = owed(db, 2)
    with db.session_scope() as session:
        ledger.claim(session, release_id, owner="a", limit=10, now=utcnow())
    SqlLedger(db.session_scope, owner="b").record_sent(ids, renew=[])
    with db.session_scope() as session:
        assert {delivery(session, i).status for i in ids} == {DeliveryStatus.SENDING}
    SqlLedger(db.session_scope, owner="a").record_sent(ids[:1], renew=[])
    with db.session_scope() as session:
        sent = delivery(session, ids[0])
        assert sent.status is DeliveryStatus.SENT and sent.lease_owner is None
        assert sent.sent_at is not None
        assert delivery(session, ids[1]).status is DeliveryStatus.SENDING


def test_a_renewed_lease_outlives_the_first_and_an_expired_one_is_found(db: Database) -> None:
    release_id, ids = owed(db, 2)
    start = utcnow() - timedelta(minutes=5)
    with db.session_scope() as session:
        ledger.claim(session, release_id, owner="a", limit=10, now=start, lease=LEASE)
    SqlLedger(db.session_scope, owner="a", lease=LEASE).record_sent([], renew=ids[:1])
    with db.session_scope() as session:
        renewed = delivery(session, ids[0]).lease_expires_at
        assert renewed is not None and renewed > utcnow()
        expired = ledger.expired_leases(session, now=utcnow())
    assert [(e.delivery_id, e.owner) for e in expired] == [(ids[1], "a")]


def test_a_vanished_owners_rows_are_sent_if_journaled_and_owed_otherwise(db: Database) -> None:
    release_id, ids = owed(db, 3)
    with db.session_scope() as session:
        ledger.claim(session, release_id, owner="gone", limit=10, now=utcnow() - LEASE * 2)
    with db.session_scope() as session:
        ledger.reclaim(session, {ids[0]}, ids, now=utcnow())
    with db.session_scope() as session:
        assert [delivery(session, i).status for i in ids] == [
            DeliveryStatus.SENT,
            DeliveryStatus.PENDING,
            DeliveryStatus.PENDING,
        ]
        assert {delivery(session, i).lease_owner for i in ids} == {None}


def test_rows_given_back_untried_get_their_attempt_back(db: Database) -> None:
    release_id, ids = owed(db, 2)
    book = SqlLedger(db.session_scope, owner="a")
    claim = book.claim(release_id, limit=10)
    assert claim is not None
    tried, untried = claim.recipients
    book.give_back([tried], [untried], delay=timedelta(0), error="421 closing")
    with db.session_scope() as session:
        first, second = delivery(session, ids[0]), delivery(session, ids[1])
        assert (first.status, first.attempts, first.last_error) == (
            DeliveryStatus.PENDING,
            1,
            "421 closing",
        )
        assert (second.status, second.attempts) == (DeliveryStatus.PENDING, 0)


def test_a_retry_later_waits_about_the_base_and_keeps_the_error(db: Database) -> None:
    release_id, ids = owed(db, 1)
    book = SqlLedger(db.session_scope, owner="a")
    claim = book.claim(release_id, limit=10)
    assert claim is not None
    before = utcnow()
    book.retry_later([(claim.recipients[0], "451 4.7.1 later")], base=30.0)
    with db.session_scope() as session:
        row = delivery(session, ids[0])
        assert row.status is DeliveryStatus.PENDING and row.last_error == "451 4.7.1 later"
        assert row.next_attempt_at is not None
        assert before + timedelta(seconds=15) <= row.next_attempt_at
        assert row.next_attempt_at <= utcnow() + timedelta(seconds=30)


def test_the_claim_skips_readers_who_are_no_longer_confirmed(db: Database) -> None:
    release_id = add_release(db)
    staying = add_readers(db, ["stays@mail.example"])
    left = add_readers(db, ["left@mail.example"], status=SubscriberStatus.UNSUBSCRIBED)
    ids = add_deliveries(db, release_id, staying + left)
    claim = SqlLedger(db.session_scope, owner="a").claim(release_id, limit=10)
    assert claim is not None
    assert [r.email for r in claim.recipients] == ["stays@mail.example"]
    assert claim.skipped == 1
    with db.session_scope() as session:
        assert delivery(session, ids[1]).status is DeliveryStatus.SKIPPED


def test_a_halt_gives_rows_back_and_pauses_in_one_step(db: Database) -> None:
    release_id, ids = owed(db, 2)
    book = SqlLedger(db.session_scope, owner="a")
    claim = book.claim(release_id, limit=10)
    assert claim is not None
    book.halt(release_id, claim.recipients[:1], claim.recipients[1:], reason="550 relay denied")
    with db.session_scope() as session:
        release = session.get(Release, release_id)
        assert release is not None
        assert (release.status, release.pause_reason) == (ReleaseStatus.PAUSED, "550 relay denied")
        assert {delivery(session, i).status for i in ids} == {DeliveryStatus.PENDING}
        assert {delivery(session, i).next_attempt_at for i in ids} == {None}


def test_a_send_is_finished_once_no_row_is_owed(db: Database) -> None:
    release_id, ids = owed(db, 1)
    book = SqlLedger(db.session_scope, owner="a")
    assert book.claim(release_id, limit=10) is not None
    with db.session_scope() as session:
        release = session.get(Release, release_id)
        assert release is not None
        assert not ledger.finish_if_done(session, release, now=utcnow())
    book.record_sent(ids, renew=[])
    with db.session_scope() as session:
        release = session.get(Release, release_id)
        assert release is not None
        assert ledger.finish_if_done(session, release, now=utcnow())
        assert release.status is ReleaseStatus.SENT


def test_refusals_laid_on_readers_go_through_the_bounce_policy(db: Database) -> None:
    release_id, ids = owed(db, 2)
    book = SqlLedger(db.session_scope, owner="a")
    claim = book.claim(release_id, limit=10)
    assert claim is not None
    dead, full = claim.recipients
    book.fail(
        [(dead, Reply(550, "5.1.1 No such user", Stage.RCPT)),
         (full, Reply(552, "5.2.2 Mailbox full", Stage.RCPT))],
        blame=True,
    )  # fmt: skip
    with db.session_scope() as session:
        assert {delivery(session, i).status for i in ids} == {DeliveryStatus.FAILED}
        kinds = dict(session.execute(select(BounceReport.subscriber_id, BounceReport.kind)).all())
        assert kinds == {dead.subscriber_id: ReportKind.HARD_BOUNCE,
                         full.subscriber_id: ReportKind.SOFT_BOUNCE}  # fmt: skip
        statuses = dict(session.execute(select(Subscriber.id, Subscriber.status)).all())
        assert statuses[dead.subscriber_id] is SubscriberStatus.BOUNCED
        assert statuses[full.subscriber_id] is SubscriberStatus.CONFIRMED


def test_a_refusal_the_policy_cannot_take_still_fails_its_delivery_and_keeps_no_half(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    release_id, ids = owed(db, 2)
    book = SqlLedger(db.session_scope, owner="a")
    claim = book.claim(release_id, limit=10)
    assert claim is not None
    real_take = bounce_policy.take
    calls: list[int] = []

    def take_then_fail(session: Session, report: bounce_policy.Report, *, now: datetime):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:  # as a lock wait on the reader's score would end
            raise OperationalError("UPDATE subscribers", {}, Exception("deadlock detected"))
        return real_take(session, report, now=now)

    monkeypatch.setattr(bounce_policy, "take", take_then_fail)
    refused = [(r, Reply(550, "5.1.1 No such user", Stage.RCPT)) for r in claim.recipients]
    book.fail(refused, blame=True)  # does not raise: the batch goes on
    with db.session_scope() as session:
        assert {delivery(session, i).status for i in ids} == {DeliveryStatus.FAILED}
        assert session.scalar(select(func.count()).select_from(BounceReport)) == 0
        assert set(session.scalars(select(Subscriber.status))) == {SubscriberStatus.CONFIRMED}


def test_a_refusal_of_a_row_whose_lease_was_lost_blames_nobody(db: Database) -> None:
    release_id, ids = owed(db, 1)
    claim = SqlLedger(db.session_scope, owner="a").claim(release_id, limit=10)
    assert claim is not None
    [recipient] = claim.recipients
    SqlLedger(db.session_scope, owner="b").fail(
        [(recipient, Reply(550, "5.1.1 No such user", Stage.RCPT))], blame=True
    )
    with db.session_scope() as session:
        assert delivery(session, ids[0]).status is DeliveryStatus.SENDING  # still a's
        assert session.scalar(select(func.count()).select_from(BounceReport)) == 0
