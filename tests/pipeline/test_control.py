"""Sends under control: schedules, cancel, a server that refuses everyone, SEND_RATE.

Real worker and beat processes, a scripted SMTP sink (see deployment.py).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from service.app_state import get_database
from service.models import Subscriber, SubscriberStatus, Suppression
from tests.pipeline.deployment import Deployment
from tests.pipeline.helpers import (
    add_subscribers,
    api_token,
    assert_each_once,
    delivery,
    finished,
    publish,
    readers,
    resume,
    wait_until,
)


def test_a_scheduled_release_is_started_by_beat(deployment: Deployment) -> None:
    d = deployment
    token = api_token(d.app)
    everyone = readers(30)
    add_subscribers(d.app, everyone)
    d.worker("w", concurrency=2)
    d.beat()
    at = datetime.now(UTC) + timedelta(seconds=3)
    release = publish(d.app.test_client(), token, publish=None, publish_at=at.isoformat())
    assert release["status"] == "scheduled"
    time.sleep(1.0)
    assert d.handler.received == [] and delivery(d, token, release["id"])["state"] == "scheduled"
    wait_until(lambda: finished(d, token, release["id"]), timeout=60, what=d.logs)
    assert datetime.now(UTC) >= at
    assert_each_once(d, everyone)


@pytest.mark.deployment_settings(send_rate=30.0)
def test_cancel_takes_effect_between_messages(deployment: Deployment) -> None:
    d = deployment
    token = api_token(d.app)
    everyone = readers(200)
    add_subscribers(d.app, everyone)
    d.worker("w", concurrency=2)
    d.beat()
    client = d.app.test_client()
    release = publish(client, token)
    wait_until(lambda: len(d.handler.received) >= 10, what="first mails", timeout=30)
    answer = client.post(
        f"/api/v1/releases/{release['id']}/cancel", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 202 and answer.get_json()["delivery"]["state"] == "cancelled"
    time.sleep(0.6)  # a message already in its SMTP transaction may still land
    at_cancel = len(d.handler.received)
    time.sleep(2.0)
    assert len(d.handler.received) == at_cancel < len(everyone) // 2
    counts = d.handler.counts()
    assert max(counts.values()) == 1
    state = delivery(d, token, release["id"])
    assert state["state"] == "cancelled" and state["sent"] == at_cancel
    assert state["pending"] == 0  # nothing is owed any more, nothing waits in a lease


@pytest.mark.parametrize(
    "refusal",
    [
        ("refuse_every_recipient", "554 5.7.1 Relay access denied"),
        ("refuse_sender", "550 5.7.1 Sender address rejected: not owned by user"),
    ],
    ids=["relay-denied", "sender-refused"],
)
def test_a_server_refusing_everyone_pauses_the_release_and_blames_no_reader(
    deployment: Deployment, refusal: tuple[str, str]
) -> None:
    d = deployment
    token = api_token(d.app)
    everyone = readers(40)
    add_subscribers(d.app, everyone)
    setattr(d.handler, refusal[0], refusal[1])
    d.worker("w", concurrency=2)
    d.beat()
    client = d.app.test_client()
    release = publish(client, token)
    wait_until(
        lambda: delivery(d, token, release["id"])["state"] == "paused", timeout=60, what=d.logs
    )
    assert d.handler.received == []
    state = delivery(d, token, release["id"])
    assert state["failed"] == 0 and state["pending"] == len(everyone)
    with d.app.app_context(), get_database().session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
        statuses = set(session.scalars(select(Subscriber.status)))
        assert statuses == {SubscriberStatus.CONFIRMED}

    setattr(d.handler, refusal[0], None)  # the operator fixes the relay, then resumes
    resume(client, token, release["id"])
    wait_until(lambda: finished(d, token, release["id"]), timeout=60, what=d.logs)
    assert_each_once(d, everyone)


@pytest.mark.deployment_settings(send_rate=20.0)
def test_send_rate_holds_for_all_workers_together(deployment: Deployment) -> None:
    d = deployment
    token = api_token(d.app)
    everyone = readers(80)
    add_subscribers(d.app, everyone)
    d.worker("one", concurrency=2)
    d.worker("two", concurrency=2)
    started = time.monotonic()
    release = publish(d.app.test_client(), token)
    wait_until(lambda: finished(d, token, release["id"]), timeout=90, what=d.logs)
    elapsed = time.monotonic() - started
    # A bucket of one second's worth, then 20 a second: four processes cannot beat it.
    assert elapsed >= (len(everyone) - 20) / 20.0
    assert_each_once(d, everyone)
