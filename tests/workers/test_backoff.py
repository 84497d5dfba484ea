"""The retry countdowns of the notice and test-copy tasks (workers/tasks.py): growing, jittered,
capped, and never under a second, which RabbitMQ's delay queues could not hold (Celery refuses
such a countdown on quorum queues: "countdown must be a positive number")."""

from __future__ import annotations

import random

from workers.tasks import backoff_seconds


def test_a_retry_waits_between_one_second_and_its_growing_cap() -> None:
    random.seed(14)
    for retries, cap in [(0, 5.0), (1, 10.0), (3, 40.0), (12, 1800.0), (30, 1800.0)]:
        waits = [backoff_seconds(retries) for _ in range(2000)]
        assert min(waits) >= 1.0 and max(waits) <= cap
