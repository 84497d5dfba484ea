"""The batch loop, specified through its seams: the real ledger on a database, a real Redis
journal, and a Transport double told what the server answers (250, 421, 451, 550, a dropped
connection). What the loop does with each answer is the send's contract (CONTRACT.md,
DESIGN.md "The send pipeline"); the same is checked end to end against a real SMTP sink in
tests/pipeline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import partial

import pytest
import redis
from sqlalchemy import select, update

from service.db import Database, utcnow
from service.models import (
    DeliveryStatus,
    Release,
    ReleaseStatus,
    Subscriber,
    SubscriberStatus,
    Suppression,
)
from service.sending import batch
from service.sending.batch import GIVEN_BACK, SHUTTING_DOWN, BatchResult, BatchSender
from service.sending.journal import SendJournal, journal_key
from service.sending.ledger import SqlLedger
from service.sending.messages import Composer
from service.sending.rate import Unlimited
from tests.sending.parts import (
    DROP,
    RecordingTransport,
    add_deliveries,
    add_readers,
    add_release,
    rows,
)

OWNER = "spec-host:1:batch"
MAIL_FROM = "Pressroom <noreply@press.example>"


def sender(
    db: Database,
    transport: RecordingTransport,
    redis_client: redis.Redis,
    composer: Composer,
    **options: object,
) -> BatchSender:
    return BatchSender(
        ledger=SqlLedger(db.session_scope, owner=OWNER, lease=timedelta(seconds=60)),
        transport=transport,
        journal=SendJournal(redis_client, OWNER),
        limiter=Unlimited(),
        messages=partial(_message, composer),
        mail_from=MAIL_FROM,
        **options,  # type: ignore[arg-type]
    )


def _message(composer: Composer, release: Release, language: str):  # type: ignore[no-untyped-def]
    return composer.release_message(release, language, now=utcnow())


def pause(db: Database, release_id: int) -> None:
    """Pause the release as press staff would, behind the batch's back."""
    with db.session_scope() as session:
        session.execute(
            update(Release).where(Release.id == release_id).values(status=ReleaseStatus.PAUSED)
        )


def status_of(db: Database, release_id: int) -> tuple[ReleaseStatus, str | None]:
    with db.session_scope() as session:
        release = session.get(Release, release_id)
        assert release is not None
        return release.status, release.pause_reason


@pytest.fixture
def send(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer
) -> Callable[..., tuple[int, BatchResult]]:
    """send(emails, **options): a sending release owing one row to each reader, one batch
    run over it; returns the release id and the batch's result."""

    def run(emails: list[str], **options: object) -> tuple[int, BatchResult]:
        release_id = add_release(db)
        add_deliveries(db, release_id, add_readers(db, emails))
        result = sender(db, transport, redis_client, composer, **options).run(release_id)
        return release_id, result

    return run


READERS = [f"reader{i}@mail{i}.example" for i in range(5)]


def test_every_reader_gets_one_copy_over_the_kept_transport(
    send: Callable[..., tuple[int, BatchResult]],
    transport: RecordingTransport,
    db: Database,
    redis_client: redis.Redis,
) -> None:
    _, result = send(READERS)

    assert transport.addressed == READERS
    assert [call.to for call in transport.calls] == READERS
    assert {call.sender for call in transport.calls} == {MAIL_FROM}
    assert transport.closed == 0  # the connection is the worker's to keep
    assert (result.claimed, result.sent, result.failed, result.deferred) == (5, 5, 0, 0)
    assert not result.more and result.stopped is None
    assert {r.status for r in rows(db).values()} == {DeliveryStatus.SENT}
    assert {r.lease_owner for r in rows(db).values()} == {None}
    assert not redis_client.exists(journal_key(OWNER))  # recorded in the database: forgotten


def test_a_451_defers_that_reader_alone_with_a_backoff(
    send: Callable[..., tuple[int, BatchResult]], transport: RecordingTransport, db: Database
) -> None:
    transport.answer(READERS[1], 451)

    _, result = send(READERS, retry_seconds=30.0)

    assert transport.addressed == READERS
    assert (result.sent, result.deferred, result.failed) == (4, 1, 0)
    deferred = rows(db)[READERS[1]]
    assert deferred.status is DeliveryStatus.PENDING
    assert deferred.last_error is not None and deferred.last_error.startswith("451 4.7.1")
    assert deferred.next_attempt_at is not None and deferred.next_attempt_at > utcnow()
    assert deferred.attempts == 1


def test_a_550_for_one_reader_among_delivered_ones_fails_and_scores_that_reader(
    send: Callable[..., tuple[int, BatchResult]], transport: RecordingTransport, db: Database
) -> None:
    transport.answer(READERS[2], 550)

    _, result = send(READERS)

    assert (result.sent, result.failed, result.deferred) == (4, 1, 0)
    failed = rows(db)[READERS[2]]
    assert failed.status is DeliveryStatus.FAILED
    assert failed.last_error is not None and failed.last_error.startswith("550 5.1.1")
    with db.session_scope() as session:
        reader = session.scalar(select(Subscriber).where(Subscriber.email == READERS[2]))
        assert reader is not None and reader.status is SubscriberStatus.BOUNCED  # 5.1.1: at once
        assert session.scalar(select(Suppression.id)) is not None


@pytest.mark.parametrize("answer", [421, DROP], ids=["421", "dropped"])
def test_an_outage_gives_the_rest_of_the_batch_back_for_later(
    send: Callable[..., tuple[int, BatchResult]],
    transport: RecordingTransport,
    db: Database,
    answer: int | str,
) -> None:
    transport.answer(READERS[2], answer)

    _, result = send(READERS, retry_seconds=30.0)

    assert transport.addressed == READERS[:3]  # nothing more is tried through a dead line
    assert result.stopped == "smtp unavailable"
    assert (result.sent, result.deferred, result.failed) == (2, 3, 0)
    found = rows(db)
    assert [found[e].status for e in READERS] == [DeliveryStatus.SENT] * 2 + [
        DeliveryStatus.PENDING
    ] * 3
    later = utcnow() + timedelta(seconds=20)
    assert all(found[e].next_attempt_at > later for e in READERS[2:])  # type: ignore[operator]
    # The one offered keeps its try; those never offered get theirs back.
    assert [found[e].attempts for e in READERS[2:]] == [1, 0, 0]
    with db.session_scope() as session:
        assert (
            session.scalar(select(Subscriber.bounce_score).where(Subscriber.email == READERS[2]))
            == 0
        )


def test_a_relay_that_refuses_everyone_pauses_the_send_and_blames_nobody(
    send: Callable[..., tuple[int, BatchResult]], transport: RecordingTransport, db: Database
) -> None:
    transport.answer(READERS[1], (550, "5.7.1 <{address}>: Relay access denied"))

    release_id, result = send(READERS)

    assert transport.addressed == READERS[:2]
    assert result.stopped == "paused: mail server refuses"
    status, reason = status_of(db, release_id)
    assert status is ReleaseStatus.PAUSED
    assert reason is not None and "Relay access denied" in reason
    found = rows(db)
    assert found[READERS[0]].status is DeliveryStatus.SENT
    refused = found[READERS[1]]
    assert refused.status is DeliveryStatus.PENDING
    assert refused.last_error is not None and refused.last_error.startswith(GIVEN_BACK)
    assert all(found[e].status is DeliveryStatus.PENDING for e in READERS[2:])
    with db.session_scope() as session:
        assert set(session.scalars(select(Subscriber.status))) == {SubscriberStatus.CONFIRMED}


def test_a_refusal_with_nobody_after_it_is_tried_again_unblamed(
    send: Callable[..., tuple[int, BatchResult]], transport: RecordingTransport, db: Database
) -> None:
    transport.answer(READERS[-1], 550)

    _, result = send(READERS)

    assert (result.sent, result.deferred, result.failed) == (4, 1, 0)
    last = rows(db)[READERS[-1]]
    assert last.status is DeliveryStatus.PENDING and last.next_attempt_at is not None
    with db.session_scope() as session:
        assert set(session.scalars(select(Subscriber.bounce_score))) == {0}


def test_a_pause_takes_effect_between_messages(
    db: Database,
    transport: RecordingTransport,
    redis_client: redis.Redis,
    composer: Composer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batch, "CHECK_EVERY", 0.0)  # look at the release before every message
    release_id = add_release(db)
    add_deliveries(db, release_id, add_readers(db, READERS))

    transport.on_call[2] = lambda: pause(db, release_id)
    result = sender(db, transport, redis_client, composer).run(release_id)

    assert transport.addressed == READERS[:2]
    assert result.stopped == "paused"
    found = rows(db)
    assert [found[e].status for e in READERS] == [DeliveryStatus.SENT] * 2 + [
        DeliveryStatus.PENDING
    ] * 3
    assert all(found[e].next_attempt_at is None for e in READERS[2:])  # due at a resume
    assert all(found[e].attempts == 0 for e in READERS[2:])


def test_a_refusal_a_pause_gives_back_unjudged_is_marked_given_back(
    db: Database,
    transport: RecordingTransport,
    redis_client: redis.Redis,
    composer: Composer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pause (press staff, or a send guard past BOUNCE_RATE_LIMIT) ends the batch with a
    refusal still unjudged. Given back unmarked, such readers came first after the resume,
    and a batch of them alone read as the relay refusing everyone: the send paused again
    (seen in test_bounce_loop's bad import). Marked, they do not count towards a pattern."""
    monkeypatch.setattr(batch, "CHECK_EVERY", 0.0)
    release_id = add_release(db)
    add_deliveries(db, release_id, add_readers(db, READERS))

    transport.answer(READERS[0], (550, "5.1.1 <{address}>: no such user"))
    transport.on_call[1] = lambda: pause(db, release_id)
    result = sender(db, transport, redis_client, composer).run(release_id)

    assert result.stopped == "paused"
    refused = rows(db)[READERS[0]]
    assert refused.status is DeliveryStatus.PENDING
    assert refused.last_error is not None and refused.last_error.startswith(GIVEN_BACK)


def test_a_warm_shutdown_gives_the_unsent_rows_back_at_once(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer
) -> None:
    release_id = add_release(db)
    add_deliveries(db, release_id, add_readers(db, READERS))
    transport.on_call[3] = lambda: stop.append(True)
    stop: list[bool] = []

    result = sender(db, transport, redis_client, composer, stop_requested=lambda: bool(stop)).run(
        release_id
    )

    assert result.stopped == SHUTTING_DOWN
    assert transport.addressed == READERS[:3]
    found = rows(db)
    assert [found[e].status for e in READERS] == [DeliveryStatus.SENT] * 3 + [
        DeliveryStatus.PENDING
    ] * 2
    assert {found[e].lease_owner for e in READERS} == {None}


def test_readers_who_left_before_the_batch_are_skipped_unsent(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer
) -> None:
    release_id = add_release(db)
    staying = add_readers(db, READERS[:2])
    gone = add_readers(db, ["gone@mail.example"], status=SubscriberStatus.UNSUBSCRIBED)
    add_deliveries(db, release_id, staying + gone)

    result = sender(db, transport, redis_client, composer).run(release_id)

    assert transport.addressed == READERS[:2]
    assert (result.claimed, result.sent, result.skipped) == (3, 2, 1)
    assert rows(db)["gone@mail.example"].status is DeliveryStatus.SKIPPED


def test_a_full_batch_says_there_is_more_and_leaves_the_rest_owed(
    send: Callable[..., tuple[int, BatchResult]], transport: RecordingTransport, db: Database
) -> None:
    _, result = send(READERS, batch_size=3)

    assert result.more and result.claimed == 3
    assert transport.addressed == READERS[:3]
    found = rows(db)
    assert [found[e].status for e in READERS[3:]] == [DeliveryStatus.PENDING] * 2


def test_a_release_not_sending_is_left_alone(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer
) -> None:
    release_id = add_release(db, status=ReleaseStatus.PAUSED)
    add_deliveries(db, release_id, add_readers(db, READERS))

    result = sender(db, transport, redis_client, composer).run(release_id)

    assert result.stopped == "not sending" and result.claimed == 0
    assert transport.calls == []
