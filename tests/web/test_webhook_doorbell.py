"""An outgoing webhook owed by a door whose doorbell fails is not lost (CONTRACT §8): the
one-click unsubscribe answers 200 with the broker gone, its event is in the outbox, and the
sweep rings it to a real worker, which posts it to a real receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import select

from service import create_app
from service.app_state import get_database, session_scope, signer
from service.db import utcnow
from service.domain import subscriptions, webhook_endpoints
from service.mailsink import MailSink
from service.models import Subscriber, WebhookEvent, WebhookEventStatus
from tests.conftest import make_settings
from tests.pipeline.helpers import add_subscribers, wait_until
from tests.web.helpers import dead_redis_url, run_sweep
from tests.webhook_receiver import Receiver, verify


@pytest.fixture
def redis_stopped(app: Flask, database_url: str, sink: MailSink) -> Iterator[Flask]:
    dead = create_app(make_settings(database_url, dead_redis_url(), sink.url))
    yield dead
    with dead.app_context():
        get_database().dispose()


def test_a_one_click_unsubscribe_with_the_broker_gone_is_posted_after_the_sweep(
    app: Flask, redis_stopped: Flask, worker: None
) -> None:
    (reader_id,) = add_subscribers(app, ["kari@mail.example"])
    with Receiver() as receiver:
        with app.app_context(), session_scope() as session:
            secret = webhook_endpoints.add(
                session,
                receiver.url,
                ["subscriber.unsubscribed"],
                include_address=True,
                now=utcnow(),
                allow_private=True,  # the receiver is on 127.0.0.1
            ).secret
            reader = session.get(Subscriber, reader_id)
            assert reader is not None
            token, uid = subscriptions.unsubscribe_token(signer(), reader), reader.uid

        answer = redis_stopped.test_client().post(
            f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}
        )
        assert answer.status_code == 200
        with app.app_context(), session_scope() as session:
            (event,) = session.scalars(select(WebhookEvent)).all()
            assert (event.event_type, event.status) == (
                "subscriber.unsubscribed",
                WebhookEventStatus.PENDING,
            )
        assert receiver.requests() == []

        assert run_sweep(app)["webhooks"] == 1
        wait_until(lambda: len(receiver.requests()) == 1, timeout=30, what="the event posted")
        (got,) = receiver.requests()
    assert verify(secret, got.headers, got.body)
    assert got.payload["data"]["subscriber"] == {
        "uid": uid,
        "status": "unsubscribed",
        "language": "nb",
        "topics": [],
        "release_id": None,
        "email": "kari@mail.example",  # this endpoint asked for addresses
    }
    with app.app_context(), session_scope() as session:
        assert session.scalars(select(WebhookEvent.status)).all() == [WebhookEventStatus.DELIVERED]
