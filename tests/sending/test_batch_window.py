"""The batch loop with many messages in flight at once (SMTP_CONNECTIONS): the same contract as
one at a time (test_batch.py), whatever order the answers come back in. Whatever ends a batch
early first waits for the messages in flight: each row ends SENT exactly when the server took
its message, nothing is offered twice, and every other row is owed again."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import redis
from sqlalchemy import select

from service.db import Database, utcnow
from service.models import Delivery, DeliveryStatus, Release, ReleaseStatus, Subscriber
from service.sending.batch import REDIS_UNAVAILABLE, SHUTTING_DOWN, BatchResult, BatchSender
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

OWNER = "spec-host:1:window"
MAIL_FROM = "Pressroom <noreply@press.example>"
WINDOW = 8
READERS = [f"reader{i}@mail{i % 7}.example" for i in range(60)]


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(WINDOW) as pool:
        yield pool


def run(
    db: Database,
    transport: RecordingTransport,
    redis_client: redis.Redis,
    composer: Composer,
    executor: ThreadPoolExecutor,
    **options: object,
) -> tuple[int, BatchResult]:
    release_id, batch = window_sender(
        db, transport, redis_client, composer, WINDOW, executor=executor, **options
    )
    return release_id, batch.run(release_id)


def taken(transport: RecordingTransport, refused: set[str]) -> set[str]:
    """The addresses whose message the double answered 250."""
    return {address for address in transport.addressed if address not in refused}


def test_every_reader_gets_one_copy_with_many_in_flight(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer,
    executor: ThreadPoolExecutor,
) -> None:  # fmt: skip
    transport.delay = 0.005
    _, result = run(db, transport, redis_client, composer, executor)
    assert Counter(transport.addressed) == Counter(READERS)
    assert (result.sent, result.failed, result.deferred) == (len(READERS), 0, 0)
    assert {row.status for row in rows(db).values()} == {DeliveryStatus.SENT}


def test_an_outage_waits_for_the_messages_in_flight_and_owes_the_rest(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer,
    executor: ThreadPoolExecutor,
) -> None:  # fmt: skip
    transport.delay = 0.005
    transport.answer(READERS[20], DROP)
    _, result = run(db, transport, redis_client, composer, executor, retry_seconds=30.0)
    assert result.stopped == "smtp unavailable"
    assert len(transport.addressed) == len(set(transport.addressed)) < len(READERS)
    sent = taken(transport, {READERS[20]})
    found = rows(db)
    assert {e for e, row in found.items() if row.status is DeliveryStatus.SENT} == sent
    assert {e for e, row in found.items() if row.status is DeliveryStatus.PENDING} == (
        set(READERS) - sent
    )
    assert {row.lease_owner for row in found.values()} == {None}
    assert result.sent == len(sent) and result.deferred == len(READERS) - len(sent)


def test_a_warm_shutdown_leaves_no_message_half_sent(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer,
    executor: ThreadPoolExecutor,
) -> None:  # fmt: skip
    stop: list[bool] = []
    transport.delay = 0.01
    transport.on_call[15] = lambda: stop.append(True)
    _, result = run(
        db, transport, redis_client, composer, executor, stop_requested=lambda: bool(stop)
    )
    assert result.stopped == SHUTTING_DOWN
    assert len(transport.addressed) == len(set(transport.addressed))
    sent = set(transport.addressed)  # every message offered was answered 250
    found = rows(db)
    assert {e for e, row in found.items() if row.status is DeliveryStatus.SENT} == sent
    assert all(found[e].status is DeliveryStatus.PENDING for e in set(READERS) - sent)
    assert all(found[e].next_attempt_at is None for e in set(READERS) - sent)  # due at once
    assert {row.lease_owner for row in found.values()} == {None}


def test_a_relay_refusing_everyone_pauses_once_its_messages_in_flight_are_back(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer,
    executor: ThreadPoolExecutor,
) -> None:  # fmt: skip
    transport.delay = 0.005
    relay_denied = (550, "5.7.1 <{address}>: Relay access denied")
    for address in READERS[10:]:
        transport.answer(address, relay_denied)
    release_id, result = run(db, transport, redis_client, composer, executor)
    assert result.stopped == "paused: mail server refuses"
    with db.session_scope() as session:
        release = session.get(Release, release_id)
        assert release is not None and release.status is ReleaseStatus.PAUSED
        assert set(session.scalars(select(Subscriber.bounce_score))) == {0}
    found = rows(db)
    assert {e for e, row in found.items() if row.status is DeliveryStatus.SENT} == set(READERS[:10])
    assert {row.status for e, row in found.items() if e not in READERS[:10]} == {
        DeliveryStatus.PENDING
    }


POLICY = (554, "5.7.1 Message refused by local policy")


def window_sender(
    db: Database,
    transport: RecordingTransport,
    redis_client: redis.Redis,
    composer: Composer,
    window: int,
    *,
    executor: ThreadPoolExecutor | None = None,
    **options: object,
) -> tuple[int, BatchSender]:
    """A sending release owing a row to each of READERS, and a batch with `window` messages
    in flight over `executor` (one of its own by default)."""
    release_id = add_release(db)
    add_deliveries(db, release_id, add_readers(db, READERS))
    return release_id, BatchSender(
        ledger=SqlLedger(db.session_scope, owner=OWNER, lease=timedelta(seconds=60)),
        transport=transport,
        journal=SendJournal(redis_client, OWNER),
        limiter=Unlimited(),
        messages=lambda release, language: composer.release_message(
            release, language, now=utcnow()
        ),
        mail_from=MAIL_FROM,
        executor=executor or ThreadPoolExecutor(window),
        window=window,
        **options,  # type: ignore[arg-type]
    )


def counted(batch: BatchSender, name: str) -> list[int]:
    """Counts the calls of one of the batch's steps (a spinning loop calls them millions of
    times)."""
    calls = [0]
    original = getattr(batch, name)

    def counting(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        return original(*args, **kwargs)

    setattr(batch, name, counting)
    return calls


def test_a_4xx_judged_last_while_a_pattern_waits_still_pauses(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer
) -> None:
    """Three policy refusals in a row, every message in flight behind them greylisted: once
    the last 4xx is judged the send pauses (it spun at full CPU, filling nothing)."""
    transport.delay = 0.05
    for address in READERS[:3]:
        transport.answer(address, POLICY)
    for address in READERS[3:]:
        transport.answer(address, 451)
    deadline = time.monotonic() + 5.0
    release_id, batch = window_sender(
        db, transport, redis_client, composer, 8, stop_requested=lambda: time.monotonic() > deadline
    )
    fills = counted(batch, "_fill")
    result = batch.run(release_id)
    assert result.stopped == "paused: mail server refuses", (result, fills[0])
    assert fills[0] < 1000


def test_a_slow_message_holding_the_window_is_waited_for_not_spun_on(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer
) -> None:
    transport.on_call[1] = lambda: time.sleep(1.0)
    release_id, batch = window_sender(db, transport, redis_client, composer, 2)
    looks = counted(batch, "_await_answers")
    result = batch.run(release_id)
    assert result.sent == len(READERS)
    assert looks[0] < 200, looks[0]


def test_a_message_taken_is_journaled_at_once_though_judged_in_its_turn(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer
) -> None:
    """Messages answered 250 behind a slow one are in the journal while it is still out: a
    worker killed then must not send them again (the sweep reads the journal)."""
    seen: list[tuple[int, int]] = []

    def slow() -> None:
        time.sleep(0.5)
        seen.append((len(transport.calls), int(redis_client.scard(journal_key(OWNER)))))

    transport.on_call[1] = slow
    release_id, batch = window_sender(db, transport, redis_client, composer, 4)
    batch.run(release_id)
    offered, journaled = seen[0]
    assert journaled >= offered - 1 - 4, seen


def test_the_rows_in_hand_stay_leased_while_a_shutdown_waits_for_a_slow_conversation(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer
) -> None:
    """A warm shutdown waits for the messages under way; a relay that stopped answering can
    take longer than the lease. The rows in hand are renewed meanwhile, so that no other
    worker claims (and sends) them before this batch has given them back."""
    stop: list[bool] = []
    leases: list[bool] = []

    def slow_and_then_look() -> None:
        stop.append(True)
        time.sleep(1.0)  # three leases of 0.3 s
        with db.session_scope() as session:
            held = session.scalars(
                select(Delivery.lease_expires_at).where(Delivery.lease_owner.is_not(None))
            ).all()
        leases.extend(until is not None and until > utcnow() for until in held)

    transport.on_call[1] = slow_and_then_look
    release_id, batch = window_sender(
        db, transport, redis_client, composer, 4, stop_requested=lambda: bool(stop)
    )
    batch.ledger = SqlLedger(db.session_scope, owner=OWNER, lease=timedelta(seconds=0.3))
    result = batch.run(release_id)
    assert result.stopped == SHUTTING_DOWN
    assert leases and all(leases), leases


def test_a_connection_journals_what_the_server_took_before_its_next_message(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer
) -> None:
    """CONTRACT §8: a duplicate can only be a message inside an SMTP transaction at a crash,
    so at most one per connection. A message the server took is journaled by the thread that
    sent it, before that thread starts another; left to the batch's thread, a connection
    raced ahead and a kill -9 then resent both (34 duplicates over 32 connections in CI)."""
    behind: list[tuple[int, int]] = []

    def look() -> None:
        offered = len(transport.calls)
        journaled = int(redis_client.scard(journal_key(OWNER)))
        if journaled < offered - 1:
            behind.append((offered, journaled))

    for n in range(2, len(READERS) + 1):
        transport.on_call[n] = look
    with ThreadPoolExecutor(1) as one_connection:
        release_id, batch = window_sender(
            db, transport, redis_client, composer, 4, executor=one_connection
        )
        result = batch.run(release_id)
    assert result.sent == len(READERS)
    assert behind == []


class RedisGoingAway(SendJournal):
    """A journal whose Redis goes away after `writes` writes: each write then fails after
    `stall` seconds, as redis-py's client does once its retries and backoff are spent."""

    def __init__(self, client: redis.Redis, writes: int, stall: float) -> None:
        super().__init__(client, OWNER)
        self.writes_left = writes
        self.stall = stall
        self._lock = threading.Lock()

    def add(self, delivery_id: int) -> None:
        with self._lock:
            self.writes_left -= 1
            gone = self.writes_left < 0
        if gone:
            time.sleep(self.stall)
            raise redis.ConnectionError("Redis went away")
        super().add(delivery_id)


def test_once_a_journal_write_fails_no_connection_starts_another_message(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer
) -> None:
    """A Redis failing over (Sentinel) fails the journal writes for seconds. A message sent
    then cannot be found by the sweep, so it may come twice: only the messages already under
    way may go. Before, the connections sent every message handed to them meanwhile (64
    duplicates over 32 connections in the failover test)."""
    transport.delay = 0.02
    with ThreadPoolExecutor(2) as two_connections:
        release_id, batch = window_sender(
            db, transport, redis_client, composer, 8, executor=two_connections
        )
        batch.journal = RedisGoingAway(redis_client, writes=10, stall=0.5)
        result = batch.run(release_id)
    assert result.stopped == REDIS_UNAVAILABLE
    offered = len(transport.calls)
    assert offered <= 10 + 2, offered  # journaled, then one under way on each connection
    found = rows(db)
    sent = {e for e, row in found.items() if row.status is DeliveryStatus.SENT}
    assert sent == set(transport.addressed)  # what went out is recorded: the batch's last act
    # The rest is owed again at once, not left leased until the sweep takes it back.
    assert {found[e].status for e in set(READERS) - sent} == {DeliveryStatus.PENDING}
    assert {row.lease_owner for row in found.values()} == {None}


class BucketGoingAway:
    """A SEND_RATE bucket whose Redis goes away after `takes` tokens."""

    def __init__(self, takes: int) -> None:
        self.takes_left = takes

    def acquire(self, stop_requested: object) -> bool:
        self.takes_left -= 1
        if self.takes_left < 0:
            raise redis.ConnectionError("Redis went away")
        return True


def test_a_rate_bucket_gone_with_redis_gives_the_batch_back_and_sends_nothing_more(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer
) -> None:
    """Before, the bucket's error ended the batch with its rows leased: nobody sent them
    until the lease ran out and the sweep took them back (a minute and more), and the task
    failed with a traceback."""
    release_id, batch = window_sender(db, transport, redis_client, composer, 4)
    batch.limiter = BucketGoingAway(takes=10)
    result = batch.run(release_id)
    assert result.stopped == REDIS_UNAVAILABLE
    offered = len(transport.calls)
    assert offered <= 10  # those not yet taken by a connection are taken back untried
    found = rows(db)
    assert sum(row.status is DeliveryStatus.SENT for row in found.values()) == offered
    assert {row.lease_owner for row in found.values()} == {None}
    assert result.deferred == len(READERS) - offered
