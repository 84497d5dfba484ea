"""A batch's journal: each message the server took, written to Redis by the thread that sent
it before that thread sends another.

A worker killed mid-batch leaves rows in 'sending' with a lease; the sweep later marks those in
that worker's journal sent and gives the rest back. So a reader can get a duplicate only if the
worker died between the server's "250 OK" and the journal write.

The journal is named by the lease owner (host, pid and a random id per run), never by a
release or delivery id: ids repeat across databases sharing one Redis, and a stale journal must
never pass for this batch's.
"""

from __future__ import annotations

import redis

JOURNAL_TTL_SECONDS = 7 * 24 * 3600  # far beyond any lease: only a forgotten journal expires


def journal_key(owner: str) -> str:
    return f"pressroom:sent:{owner}"


class SendJournal:
    """One batch's record in Redis of each message the server took, written before the next
    message goes out: what the sweep consults when the worker vanished mid-batch."""

    def __init__(self, client: redis.Redis, owner: str) -> None:
        self._redis = client
        self._key = journal_key(owner)
        self._expiring = False

    def add(self, delivery_id: int) -> None:
        if self._expiring:
            self._redis.sadd(self._key, delivery_id)
            return
        pipe = self._redis.pipeline(transaction=False)
        pipe.sadd(self._key, delivery_id)
        pipe.expire(self._key, JOURNAL_TTL_SECONDS)
        pipe.execute()
        self._expiring = True

    def close(self) -> None:
        """Forget the batch: call once its rows are recorded in the database."""
        self._redis.delete(self._key)
