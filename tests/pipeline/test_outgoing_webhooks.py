"""Outgoing webhooks end to end (issue 15): a real worker process and beat, the real confirm
page, and a real HTTP receiver. Time runs on settings: the backoff's first wait and the retry
window are made short, so nothing here sleeps for the real 24 hours."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from service.app_state import get_database, signer
from service.domain import subscriptions, webhook_endpoints
from service.models import Subscriber, SubscriberStatus, WebhookEvent, WebhookEventStatus
from tests.conftest import log_in
from tests.pipeline.deployment import Deployment
from tests.pipeline.helpers import NOW, add_subscribers, api_token, publish, wait_until
from tests.webhook_receiver import Receiver, closed_port_url, verify


def endpoint(d: Deployment, url: str, events: list[str]) -> str:
    """Register `url` as the CLI does (the receiver is on 127.0.0.1); its secret."""
    with d.app.app_context(), get_database().session_scope() as session:
        added = webhook_endpoints.add(
            session, url, events, include_address=False, now=NOW, allow_private=True
        )
        return added.secret


def confirm_on_the_page(d: Deployment, email: str) -> str:
    """A pending reader clicks their confirmation link; their uid."""
    (subscriber_id,) = add_subscribers(d.app, [email], status=SubscriberStatus.PENDING)
    with d.app.app_context(), get_database().session_scope() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        assert subscriber is not None
        token, uid = subscriptions.confirm_token(signer(), subscriber), subscriber.uid
    answer = d.app.test_client().post(f"/confirm/{token}")
    assert answer.status_code == 200, answer.text
    return uid


def events(d: Deployment) -> list[WebhookEvent]:
    with d.app.app_context(), get_database().session_scope() as session:
        return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


@pytest.mark.deployment_settings(webhook_backoff_seconds=0.3, webhook_retry_seconds=300.0)
def test_a_receiver_that_fails_three_times_gets_the_event_once_it_answers(
    deployment: Deployment,
) -> None:
    d = deployment
    with Receiver(script=[500, 500, 500]) as receiver:
        secret = endpoint(d, receiver.url, ["subscriber.confirmed"])
        d.worker("w", concurrency=2)
        d.beat()
        uid = confirm_on_the_page(d, "kari@mail.example")
        wait_until(lambda: any(r.answered == 200 for r in receiver.requests()), what=d.logs)
        time.sleep(1.0)  # a second delivery, were there one, would come within the sweep
        got = receiver.requests()

    assert [r.answered for r in got] == [500, 500, 500, 200]
    assert len({r.headers["webhook-id"] for r in got}) == 1, "one event, the same id each time"
    delivered = got[-1]
    assert verify(secret, delivered.headers, delivered.body)
    assert not verify("whsec_" + "A" * 32, delivered.headers, delivered.body)
    assert delivered.payload["type"] == "subscriber.confirmed"
    reader = delivered.payload["data"]["subscriber"]
    assert (reader["uid"], reader["status"]) == (uid, "confirmed")
    assert "email" not in reader and b"kari@mail.example" not in delivered.body
    (event,) = events(d)
    assert (event.status, event.attempts, event.last_error) == (
        WebhookEventStatus.DELIVERED,
        4,
        None,
    )


@pytest.mark.deployment_settings(webhook_backoff_seconds=0.3, webhook_retry_seconds=8.0)
def test_a_receiver_down_for_longer_than_the_retry_window_shows_as_failed(
    deployment: Deployment,
) -> None:
    d = deployment
    endpoint(d, closed_port_url(), ["subscriber.confirmed"])
    d.worker("w", concurrency=2)
    d.beat()
    # The window runs from the event: the worker must be there for the attempts within it.
    wait_until(lambda: " ready." in (d.workdir / "w.log").read_text(), what=d.logs)
    confirm_on_the_page(d, "ola@mail.example")
    wait_until(lambda: events(d)[0].status is WebhookEventStatus.FAILED, timeout=60, what=d.logs)
    (event,) = events(d)
    assert event.attempts >= 2, "retried before giving up"
    assert event.finished_at is not None
    assert event.finished_at - event.created_at >= timedelta(seconds=8)
    assert event.last_error and event.last_error.startswith("no answer")

    api_token(d.app)
    desk = d.app.test_client()
    assert log_in(desk)[0] == 303
    page = desk.get("/admin/webhooks")
    assert page.status_code == 200
    assert event.event_id in page.text
    assert "no answer" in page.text


def test_a_release_is_announced_published_then_sent_in_that_order(deployment: Deployment) -> None:
    d = deployment
    token = api_token(d.app)
    add_subscribers(d.app, ["one@mail.example", "two@mail.example"])
    with Receiver() as receiver:
        secret = endpoint(d, receiver.url, ["release.published", "release.sent"])
        d.worker("w", concurrency=2)
        d.beat()
        release = publish(d.app.test_client(), token)
        wait_until(lambda: len(receiver.requests()) >= 2, what=d.logs)
        got = receiver.requests()
    assert [r.payload["type"] for r in got] == ["release.published", "release.sent"]
    assert all(verify(secret, r.headers, r.body) for r in got)
    sent = got[1].payload["data"]["release"]
    assert (sent["id"], sent["status"]) == (release["id"], "sent")
    assert d.handler.counts() == {"one@mail.example": 1, "two@mail.example": 1}


@pytest.mark.deployment_settings(webhook_backoff_seconds=0.2, webhook_retry_seconds=300.0)
def test_a_readers_later_event_waits_for_the_earlier_one_being_retried(
    deployment: Deployment,
) -> None:
    d = deployment
    with Receiver(script=[500] * 10_000) as receiver:  # down until it recovers
        endpoint(d, receiver.url, ["subscriber.confirmed", "subscriber.unsubscribed"])
        d.worker("w", concurrency=2)
        d.beat()
        uid = confirm_on_the_page(d, "kari@mail.example")
        with d.app.app_context(), get_database().session_scope() as session:
            reader = session.scalar(select(Subscriber).where(Subscriber.uid == uid))
            assert reader is not None
            token = subscriptions.unsubscribe_token(signer(), reader)
        assert d.app.test_client().post(f"/unsubscribe/{token}").status_code == 200
        tried = len(receiver.requests())
        wait_until(lambda: len(receiver.requests()) >= tried + 3, what=d.logs)  # retried since
        receiver.recover()
        wait_until(lambda: sum(r.answered == 200 for r in receiver.requests()) == 2, what=d.logs)
        got = [(r.payload["type"], r.answered) for r in receiver.requests()]
    failed = len(got) - 2
    assert got[:failed] == [("subscriber.confirmed", 500)] * failed, "the later one waited"
    assert got[failed:] == [("subscriber.confirmed", 200), ("subscriber.unsubscribed", 200)]
