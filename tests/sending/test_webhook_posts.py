"""One attempt of an outgoing webhook, against a real HTTP receiver, in this process: what is
posted, and that a redirect is not followed but counted a failure."""

from __future__ import annotations

import socket
import threading
from datetime import timedelta

import pytest
from flask import Flask
from prometheus_client import REGISTRY

from service.app_state import session_scope, settings
from service.db import utcnow
from service.domain import webhook_endpoints, webhook_outbox
from service.models import Release, ReleaseStatus, WebhookEvent, WebhookEventStatus
from service.sending import webhook_posts
from tests.webhook_receiver import Receiver, closed_port_url, verify


def owe_one(app: Flask, url: str) -> tuple[int, str]:
    """A release.paused event owed to `url`: (its row id, the endpoint's secret)."""
    with app.app_context(), session_scope() as session:
        secret = webhook_endpoints.add(
            session,
            url,
            ["release.paused"],
            include_address=False,
            now=utcnow(),
            allow_private=True,  # the tests' receivers are on 127.0.0.1
        ).secret
        release = Release(slug="r", title="Å pause", language="nb", status=ReleaseStatus.PAUSED)
        session.add(release)
        session.flush()
        webhook_outbox.release_changed(
            session, webhook_endpoints.EventType.RELEASE_PAUSED, release, now=utcnow()
        )
        # Not rung: a worker of this test session would make the attempt these tests make.
        (row_id,) = session.info.pop(webhook_outbox.TO_RING)
    return row_id, secret


def attempts(outcome: str) -> float:
    return REGISTRY.get_sample_value("pressroom_webhook_attempts_total", {"outcome": outcome}) or 0


def attempt(app: Flask, row_id: int) -> webhook_posts.Delivery:
    with app.app_context():
        return webhook_posts.deliver(session_scope, row_id, settings(), now=utcnow)


def event(app: Flask, row_id: int) -> WebhookEvent:
    with app.app_context(), session_scope() as session:
        row = session.get(WebhookEvent, row_id)
        assert row is not None
        session.expunge(row)
        return row


def test_a_2xx_delivers_the_signed_body_once(app: Flask) -> None:
    before = attempts("delivered")
    with Receiver() as receiver:
        row_id, secret = owe_one(app, receiver.url)
        done = attempt(app, row_id)
        assert attempt(app, row_id).status is None  # delivered: nothing more to do
        (got,) = receiver.requests()
    assert done.status is WebhookEventStatus.DELIVERED
    assert verify(secret, got.headers, got.body)
    assert got.headers["content-type"] == "application/json"
    assert got.payload["data"]["release"]["title"] == "Å pause"
    assert got.body == event(app, row_id).body.encode()
    assert attempts("delivered") == before + 1


def test_a_redirect_is_not_followed_and_is_tried_again_later(app: Flask) -> None:
    before = attempts("retrying")
    with Receiver(script=[302]) as receiver:
        row_id, _ = owe_one(app, receiver.url)
        done = attempt(app, row_id)
        assert len(receiver.requests()) == 1
    assert done.status is WebhookEventStatus.PENDING and done.retry_at is not None
    assert done.retry_at - utcnow() <= timedelta(seconds=settings_backoff(app))
    row = event(app, row_id)
    assert row.last_error == "HTTP 302 (a redirect, not followed)"
    assert attempts("retrying") == before + 1


def test_a_receiver_that_is_not_there_is_a_short_error(app: Flask) -> None:
    row_id, _ = owe_one(app, closed_port_url())
    done = attempt(app, row_id)
    assert done.status is WebhookEventStatus.PENDING
    error = event(app, row_id).last_error
    assert error and error.startswith("no answer:") and "127.0.0.1" not in error


def settings_backoff(app: Flask) -> float:
    with app.app_context():
        return settings().webhook_backoff_seconds


def test_a_receiver_that_does_not_speak_http_is_an_error_not_a_stuck_event(app: Flask) -> None:
    """http.client's BadStatusLine is no OSError: it escaped the attempt after the claim,
    and the event stayed pending, re-claimed each minute, never failed (review)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def answer_garbage() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

        thread = threading.Thread(target=answer_garbage, daemon=True)
        thread.start()
        row_id, _ = owe_one(app, f"http://127.0.0.1:{server.getsockname()[1]}/hook")
        done = attempt(app, row_id)
        thread.join(timeout=10)
    assert done.status is WebhookEventStatus.PENDING  # tried again later, then failed
    error = event(app, row_id).last_error
    assert error == "no answer: BadStatusLine"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_an_internal_receiver_is_refused_at_delivery_without_saying_more(
    app: Flask, host: str
) -> None:
    """Registered while internal addresses were allowed, or under a name that resolves to
    one (localhost here, any name in DNS): the address connected to is what is judged."""
    with Receiver() as receiver:
        row_id, _ = owe_one(app, receiver.url.replace("127.0.0.1", host))
        with app.app_context():
            strict = settings().replace(webhook_allow_private=False)
            done = webhook_posts.deliver(session_scope, row_id, strict, now=utcnow)
        assert receiver.requests() == []
    assert done.status is WebhookEventStatus.PENDING  # failed like any other attempt
    assert event(app, row_id).last_error == "address not allowed"
