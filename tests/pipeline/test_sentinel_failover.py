"""Redis behind Sentinel (issue 14): the primary dies with SIGKILL in the middle of a send, a
sentinel-promoted replica takes over, and nobody is lost.

Everything that uses Redis goes through the one REDIS_URL=redis+sentinel://...: the Celery
broker of the web and the worker, the signup limiter, the send journal and the rate bucket.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.pipeline.deployment import Deployment, deployed
from tests.pipeline.helpers import (
    add_subscribers,
    api_token,
    finished,
    publish,
    readers,
    wait_until,
)
from tests.sentinel_cluster import SentinelCluster, require_redis_server

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    require_redis_server()
    started = SentinelCluster(tmp_path / "redis").start()
    try:
        yield started
    finally:
        started.stop()


class Signups(threading.Thread):
    """Readers signing up through the API, one every `pause` seconds, each answer kept."""

    def __init__(self, app: Flask, pause: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.client = app.test_client()
        self.pause = pause
        self.answers: list[tuple[str, int, str | None, float]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        number = 0
        while not self.stopping.is_set():
            address = f"signup{number:04d}@mail.example"
            answer = self.client.post("/api/v1/subscriptions", json={"email": address})
            retry_after = answer.headers.get("Retry-After")
            self.answers.append((address, answer.status_code, retry_after, time.monotonic()))
            number += 1
            time.sleep(self.pause)

    def accepted(self) -> list[str]:
        return [address for address, status, _, _ in self.answers if status == 202]

    def accepted_after(self, moment: float) -> bool:
        return any(status == 202 and at > moment for _, status, _, at in self.answers)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


def test_a_primary_killed_mid_send_fails_over_and_loses_nobody(
    app: Flask, database_url: str, cluster: SentinelCluster, tmp_path: Path
) -> None:
    workdir = tmp_path / "deployment"
    workdir.mkdir()
    # The lease outlasts redis-py's retries (about 7 s, its default backoff), as production's
    # 60 s does: the batch that Redis failed under records what it sent before the sweep may
    # take its rows back. SEND_RATE: the rate bucket is in Redis too.
    lease = 12
    with deployed(
        database_url, cluster.url, workdir, send_rate=100_000.0, send_lease_seconds=lease
    ) as d:
        token = api_token(d.app)
        everyone = readers(3000)
        add_subscribers(d.app, everyone)
        d.worker("first", concurrency=2)
        d.beat()
        release = publish(d.app.test_client(), token)
        wait_until(lambda: len(d.handler.received) >= 500, what="500 mails", timeout=60)
        signups = Signups(d.app)
        signups.start()
        cluster.kill_primary()
        at_kill = len(d.handler.received)
        assert at_kill < len(everyone), "the send finished before the kill: make it bigger"
        cluster.wait_for_promotion()
        promoted = time.monotonic()
        # Service resumes by itself: nothing is restarted, no setting changed.
        wait_until(lambda: signups.accepted_after(promoted), timeout=30, what="a signup again")
        signups.stop()
        wait_until(lambda: finished(d, token, release["id"]), timeout=180, what=d.logs)
        assert d.app.test_client().get("/readyz").status_code == 200

        _assert_every_reader_got_it(d, everyone)
        _assert_signups_answered_or_said_when_to_come_back(signups)
        _assert_each_accepted_signup_is_confirmed(d, signups.accepted())


def _assert_every_reader_got_it(d: Deployment, everyone: list[str]) -> None:
    counts = Counter(
        recipient
        for mail in d.handler.received
        for recipient in mail.recipients
        if recipient.startswith("reader")
    )
    assert set(counts) == set(everyone), f"{len(set(everyone) - set(counts))} readers missed"
    # Only a message inside an SMTP transaction when Redis went away can come twice: one per
    # connection of the worker process (SMTP_CONNECTIONS).
    duplicates = sum(count - 1 for count in counts.values())
    assert duplicates <= d.settings.smtp_connections, f"{duplicates} duplicates"


def _assert_signups_answered_or_said_when_to_come_back(signups: Signups) -> None:
    statuses = Counter(status for _, status, _, _ in signups.answers)
    assert set(statuses) <= {202, 503}, statuses  # never a 500
    assert statuses[503] >= 1, "no signup met the failover: the test proves nothing"
    assert all(retry for _, status, retry, _ in signups.answers if status == 503)


def _assert_each_accepted_signup_is_confirmed(d: Deployment, accepted: list[str]) -> None:
    def confirmations() -> Counter[str]:
        return Counter(
            recipient
            for mail in d.handler.received
            for recipient in mail.recipients
            if recipient.startswith("signup")
        )

    wait_until(
        lambda: set(confirmations()) >= set(accepted),
        timeout=60,
        what=lambda: f"confirmations for {sorted(set(accepted) - set(confirmations()))}",
    )
    assert set(confirmations()) == set(accepted)  # a 503 stored nothing and sent nothing
