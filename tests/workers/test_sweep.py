"""The sweep after a worker vanished: what its own journal says was sent is sent, the rest is owed.

Runs the sweep's code in this process against the real database and Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import redis
from flask import Flask
from sqlalchemy import insert, select

from service.app_state import get_database
from service.db import utcnow
from service.models import Delivery, DeliveryStatus, Release, ReleaseStatus
from service.sending.journal import journal_key
from tests.pipeline.helpers import add_subscribers
from workers.tasks import sweep

DEAD_OWNER = "web-1:4242:0f3c2a9e-dead-task"


def leased_rows(app: Flask, count: int, *, expires_at: list[datetime]) -> tuple[int, list[int]]:
    """A paused release (the sweep recovers rows, starts no sending) with `count` rows held by
    DEAD_OWNER; returns the release id and the delivery ids."""
    subscriber_ids = add_subscribers(app, [f"r{i}@mail.example" for i in range(count)])
    with app.app_context(), get_database().session_scope() as session:
        release = Release(
            slug="r", title="T", language="nb", status=ReleaseStatus.PAUSED, planned_at=utcnow()
        )
        session.add(release)
        session.flush()
        ids = list(
            session.scalars(
                insert(Delivery).returning(Delivery.id),
                [
                    {
                        "release_id": release.id,
                        "subscriber_id": sid,
                        "language": "nb",
                        "status": DeliveryStatus.SENDING,
                        "attempts": 1,
                        "lease_owner": DEAD_OWNER,
                        "lease_expires_at": until,
                    }
                    for sid, until in zip(subscriber_ids, expires_at, strict=True)
                ],
            )
        )
        return release.id, sorted(ids)


def statuses(app: Flask) -> dict[int, DeliveryStatus]:
    with app.app_context(), get_database().session_scope() as session:
        return dict(session.execute(select(Delivery.id, Delivery.status)).all())


@pytest.fixture
def redis_client(app: Flask) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(app.extensions["pressroom.redis_url"])
    yield client
    for key in client.scan_iter("pressroom:sent:*"):
        client.delete(key)
    client.close()


def test_only_the_vanished_batchs_own_journal_counts(app: Flask, redis_client: redis.Redis) -> None:
    past = utcnow() - timedelta(minutes=5)
    release_id, ids = leased_rows(app, 6, expires_at=[past] * 6)
    redis_client.sadd(journal_key(DEAD_OWNER), *ids[:2])
    # Journals of other batches (another database on this Redis, an older send) name the
    # same delivery ids: they must not count for this worker's rows.
    redis_client.sadd(journal_key("web-2:77:another-run"), *ids)
    redis_client.sadd(f"pressroom:sent:{release_id}", *ids)

    with app.app_context():
        report = sweep.run()

    assert report["reclaimed"] == len(ids)
    rows = statuses(app)
    assert [rows[i] for i in ids] == [DeliveryStatus.SENT] * 2 + [DeliveryStatus.PENDING] * 4
    assert not redis_client.exists(journal_key(DEAD_OWNER))  # done with: nothing left behind


def test_a_sweep_forgets_only_the_journal_entries_it_recorded(
    app: Flask, redis_client: redis.Redis
) -> None:
    """A sweep may see part of a batch (a row limit, leases renewed at different times): the
    journal entries of the rows it did not take must stay for the next sweep."""
    past, future = utcnow() - timedelta(minutes=5), utcnow() + timedelta(minutes=5)
    _, ids = leased_rows(app, 4, expires_at=[past, past, future, future])
    redis_client.sadd(journal_key(DEAD_OWNER), ids[0], ids[2])

    with app.app_context():
        sweep.run()

    rows = statuses(app)
    assert [rows[i] for i in ids] == [
        DeliveryStatus.SENT,
        DeliveryStatus.PENDING,
        DeliveryStatus.SENDING,
        DeliveryStatus.SENDING,
    ]
    assert redis_client.smembers(journal_key(DEAD_OWNER)) == {str(ids[2]).encode()}


def test_rows_a_batch_gave_back_after_a_cancel_are_cancelled_too(
    app: Flask, redis_client: redis.Redis
) -> None:
    """A cancel that lands while a batch holds rows: the batch (a shutdown, a refusal, a dead
    worker's lease taken back) gives them back as owed; a cancelled release owes nothing."""
    past = utcnow() - timedelta(minutes=5)
    release_id, _ = leased_rows(app, 4, expires_at=[past] * 4)
    with app.app_context(), get_database().session_scope() as session:
        release = session.get(Release, release_id)
        assert release is not None
        release.status = ReleaseStatus.CANCELLED

    with app.app_context():
        sweep.run()  # takes the dead lease back (owed), then cancels what is owed
        report = sweep.run()

    assert set(statuses(app).values()) == {DeliveryStatus.CANCELLED}
    assert report["cancelled"] == 0  # nothing left for a second sweep
