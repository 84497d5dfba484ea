"""The sweep after a worker vanished: what its own journal says was sent is sent, the rest is owed.

Runs the sweep's code in this process against the real database and Redis.
"""

from __future__ import annotations

from datetime import timedelta

import redis
from flask import Flask
from sqlalchemy import insert, select

from service.db import get_database, utcnow
from service.models import Delivery, DeliveryStatus, Release, ReleaseStatus
from tests.pipeline.helpers import add_subscribers
from workers.sending import journal_key
from workers.tasks import sweep

DEAD_OWNER = "web-1:4242:0f3c2a9e-dead-task"


def test_only_the_vanished_batchs_own_journal_counts(app: Flask) -> None:
    subscriber_ids = add_subscribers(app, [f"r{i}@mail.example" for i in range(6)])
    expired = utcnow() - timedelta(minutes=5)
    with app.app_context(), get_database().session_scope() as session:
        # Paused: the sweep recovers the rows but starts no new sending.
        release = Release(
            slug="r", title="T", language="nb", status=ReleaseStatus.PAUSED, planned_at=expired
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
                        "lease_expires_at": expired,
                    }
                    for sid in subscriber_ids
                ],
            )
        )
    client = redis.Redis.from_url(app.extensions["pressroom.redis_url"])
    try:
        client.sadd(journal_key(DEAD_OWNER), *ids[:2])
        # Journals of other batches (another database on this Redis, an older send) name the
        # same delivery ids: they must not count for this worker's rows.
        client.sadd(journal_key("web-2:77:another-task"), *ids)
        client.sadd(f"pressroom:sent:{release.id}", *ids)

        with app.app_context():
            report = sweep.run()

        assert report["reclaimed"] == len(ids)
        with app.app_context(), get_database().session_scope() as session:
            rows = dict(session.execute(select(Delivery.id, Delivery.status)).all())
        assert [rows[i] for i in ids] == [DeliveryStatus.SENT] * 2 + [DeliveryStatus.PENDING] * 4
        assert not client.exists(journal_key(DEAD_OWNER))
    finally:
        client.delete(journal_key("web-2:77:another-task"), f"pressroom:sent:{release.id}")
        client.close()
