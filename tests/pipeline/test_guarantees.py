"""CONTRACT §8 on the real stack: real worker and beat processes, a real SMTP sink, crashes."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import redis
from sqlalchemy import select

from service.app_state import get_database
from service.models import Subscriber, SubscriberStatus, Suppression
from tests.pipeline.deployment import BOTH_BROKERS, Deployment
from tests.pipeline.helpers import (
    add_subscribers,
    api_token,
    assert_each_once,
    finished,
    publish,
    readers,
    release_state,
    wait_until,
)


@BOTH_BROKERS
def test_kill_9_mid_send_loses_nobody(deployment: Deployment) -> None:
    d = deployment
    token = api_token(d.app)
    everyone = readers(2000)
    add_subscribers(d.app, everyone)
    first = d.worker("first", concurrency=2)
    d.beat()
    release = publish(d.app.test_client(), token)
    wait_until(lambda: len(d.handler.received) >= 300, what="300 mails", timeout=60)
    d.kill(first, signal.SIGKILL)  # the whole process group: main process and children
    first.wait(timeout=10)
    at_kill = len(d.handler.received)
    assert at_kill < len(everyone), "the send finished before the kill: make it bigger"
    d.worker("second", concurrency=2)
    wait_until(lambda: finished(d, token, release["id"]), timeout=120, what=d.logs)
    # Only a message inside an SMTP transaction at the kill can come twice: one per connection
    # of the killed worker process (SMTP_CONNECTIONS, 32).
    assert_each_once(d, everyone, duplicates_allowed=d.settings.smtp_connections)


@BOTH_BROKERS
def test_warm_shutdown_mid_send_sends_nothing_twice(deployment: Deployment) -> None:
    d = deployment
    token = api_token(d.app)
    everyone = readers(2000)
    add_subscribers(d.app, everyone)
    first = d.worker("first", concurrency=2)
    d.beat()
    release = publish(d.app.test_client(), token)
    wait_until(lambda: len(d.handler.received) >= 300, what="300 mails", timeout=60)
    os.kill(first.pid, signal.SIGTERM)  # what systemd or Kubernetes sends
    first.wait(timeout=60)
    d.worker("second", concurrency=2)
    wait_until(lambda: finished(d, token, release["id"]), timeout=120, what=d.logs)
    assert_each_once(d, everyone)


def test_redis_wiped_mid_send_is_recovered_by_the_sweep(deployment: Deployment) -> None:
    d = deployment
    token = api_token(d.app)
    everyone = readers(1500)
    add_subscribers(d.app, everyone)
    d.worker("w", concurrency=2)
    d.beat()
    release = publish(d.app.test_client(), token)
    wait_until(lambda: len(d.handler.received) >= 200, what="200 mails", timeout=60)
    client = redis.Redis.from_url(d.settings.redis_url)
    if os.environ.get("REDIS_URL"):
        client.flushdb()  # a shared server: wipe only our database
    else:
        client.flushall()
    client.close()
    wait_until(lambda: finished(d, token, release["id"]), timeout=120, what=d.logs)
    assert_each_once(d, everyone)


def test_an_smtp_outage_delays_and_loses_nobody(deployment: Deployment) -> None:
    d = deployment
    token = api_token(d.app)
    everyone = readers(100)
    add_subscribers(d.app, everyone)
    d.handler.outage.set()
    d.worker("w", concurrency=2)
    d.beat()
    release = publish(d.app.test_client(), token)

    def planned() -> bool:
        state = release_state(d.app.test_client(), token, release["id"])["delivery"]
        return state["total"] == len(everyone)

    wait_until(planned, timeout=60, what=d.logs)
    time.sleep(3)  # several tries against the outage
    assert d.handler.received == []
    state = release_state(d.app.test_client(), token, release["id"])["delivery"]
    assert state["state"] == "sending" and state["pending"] == len(everyone)
    d.handler.outage.clear()
    wait_until(lambda: finished(d, token, release["id"]), timeout=60, what=d.logs)
    assert_each_once(d, everyone)
    with d.app.app_context(), get_database().session_scope() as session:
        statuses = set(session.scalars(select(Subscriber.status)))
        assert statuses == {SubscriberStatus.CONFIRMED}
        assert session.scalar(select(Suppression.id)) is None


def test_451_is_retried_and_550_5_1_1_is_one_attempt(deployment: Deployment) -> None:
    d = deployment
    token = api_token(d.app)
    everyone = readers(60)
    add_subscribers(d.app, everyone)
    greylisted = everyone[:5]
    unknown = everyone[5:8]
    for address in greylisted:  # refused once, then accepted
        d.handler.refusals[address] = ["451 4.7.1 Greylisted, try again later"]
    for address in unknown:
        d.handler.refusals[address] = ["550 5.1.1 No such user here", "550 5.1.1 No such user"]
    d.worker("w", concurrency=2)
    d.beat()
    release = publish(d.app.test_client(), token)
    wait_until(lambda: finished(d, token, release["id"]), timeout=60, what=d.logs)
    delivered = [a for a in everyone if a not in unknown]
    assert_each_once(d, delivered)
    assert all(d.handler.attempts[a] == 1 for a in unknown)
    assert all(d.handler.attempts[a] == 2 for a in greylisted)
    state = release_state(d.app.test_client(), token, release["id"])["delivery"]
    assert (state["sent"], state["failed"]) == (len(delivered), len(unknown))
    with d.app.app_context(), get_database().session_scope() as session:
        bounced = set(
            session.scalars(
                select(Subscriber.email).where(Subscriber.status == SubscriberStatus.BOUNCED)
            )
        )
    assert bounced == set(unknown)


@pytest.mark.deployment_settings(send_rate=40.0)
def test_one_click_unsubscribe_during_a_send_stops_that_copy(deployment: Deployment) -> None:
    d = deployment
    token = api_token(d.app)
    everyone = readers(120)
    ids = add_subscribers(d.app, everyone)
    d.worker("w", concurrency=2)
    release = publish(d.app.test_client(), token)
    wait_until(lambda: len(d.handler.received) >= 5, what="first mails", timeout=30)
    leaving = everyone[-1]
    with d.app.app_context(), get_database().session_scope() as session:
        row = session.get(Subscriber, ids[-1])
        assert row is not None
        from service.domain.subscriptions import unsubscribe_token

        path = f"/unsubscribe/{unsubscribe_token(d.app.extensions['pressroom.signer'], row)}"
    answer = d.app.test_client(use_cookies=False).post(path, data="List-Unsubscribe=One-Click")
    assert answer.status_code == 200
    wait_until(lambda: finished(d, token, release["id"]), timeout=60, what=d.logs)
    counts = d.handler.counts()
    assert leaving not in counts
    assert_each_once(d, everyone[:-1])
    assert release_state(d.app.test_client(), token, release["id"])["delivery"]["skipped"] == 1


@pytest.mark.deployment_settings(send_rate=40.0)
def test_pause_and_resume_take_effect_between_messages(deployment: Deployment) -> None:
    d = deployment
    token = api_token(d.app)
    everyone = readers(120)
    add_subscribers(d.app, everyone)
    d.worker("w", concurrency=2)
    client = d.app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    release = publish(client, token)
    wait_until(lambda: len(d.handler.received) >= 10, what="first mails", timeout=30)
    answer = client.post(f"/api/v1/releases/{release['id']}/pause", headers=headers)
    assert answer.status_code == 202 and answer.get_json()["delivery"]["state"] == "paused"
    # Messages already in their SMTP transactions may still land: wait until none has for a
    # second (a busy machine takes longer to finish them than a quiet one).
    at_pause, quiet_since = len(d.handler.received), time.monotonic()
    deadline = quiet_since + 15
    while time.monotonic() - quiet_since < 1.0:
        assert time.monotonic() < deadline, "mail kept coming after the pause"
        time.sleep(0.05)
        if len(d.handler.received) != at_pause:
            at_pause, quiet_since = len(d.handler.received), time.monotonic()
    time.sleep(1.5)
    assert len(d.handler.received) == at_pause < len(everyone)
    answer = client.post(f"/api/v1/releases/{release['id']}/resume", headers=headers)
    assert answer.status_code == 202
    wait_until(lambda: finished(d, token, release["id"]), timeout=60, what=d.logs)
    assert_each_once(d, everyone)


def test_publishing_twice_at_once_sends_once(deployment: Deployment) -> None:
    d = deployment
    token = api_token(d.app)
    everyone = readers(50)
    add_subscribers(d.app, everyone)
    d.worker("w", concurrency=2)
    draft = publish(d.app.test_client(), token, publish=False)
    headers = {"Authorization": f"Bearer {token}"}
    answers: list[int] = []

    def click() -> None:
        r = d.app.test_client().post(f"/api/v1/releases/{draft['id']}/publish", headers=headers)
        answers.append(r.status_code)

    clicks = [threading.Thread(target=click) for _ in range(4)]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join()
    assert answers == [202] * 4
    wait_until(lambda: finished(d, token, draft["id"]), timeout=60, what=d.logs)
    time.sleep(0.5)
    assert_each_once(d, everyone)
