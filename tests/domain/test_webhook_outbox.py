"""The outgoing webhooks' outbox on a real database session: which changes owe which events,
in the change's own transaction; what they carry; order per reader; backoff; the window."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain import (
    bounce_policy,
    releases,
    subscriptions,
    webhook_endpoints,
    webhook_outbox,
)
from service.domain.errors import InvalidInput
from service.domain.subscriptions import Signup
from service.domain.tokens import TokenSigner
from service.models import (
    ConsentSource,
    Release,
    ReleaseStatus,
    ReportDoor,
    ReportKind,
    Subscriber,
    WebhookEvent,
    WebhookEventStatus,
)
from service.sending import ledger

NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
EVERY_EVENT = list(webhook_endpoints.EVENT_TYPES)


@pytest.fixture
def signer(app: Flask) -> TokenSigner:
    return app.extensions["pressroom.signer"]


def add_endpoint(
    session: Session, events: list[str], *, include_address: bool = False, url: str = ""
) -> int:
    added = webhook_endpoints.add(
        session,
        url or "https://crm.example/hooks",
        events,
        include_address=include_address,
        now=NOW,
    )
    return added.endpoint.id


def owed(session: Session, endpoint_id: int | None = None) -> list[WebhookEvent]:
    query = select(WebhookEvent).order_by(WebhookEvent.id)
    if endpoint_id is not None:
        query = query.where(WebhookEvent.endpoint_id == endpoint_id)
    return list(session.scalars(query))


def body(event: WebhookEvent) -> dict[str, object]:
    return json.loads(event.body)


def confirmed_reader(session: Session, signer: TokenSigner, email: str) -> Subscriber:
    signup = Signup(email, "nb", ["kultur"], ConsentSource.FORM, "v1")
    subscriptions.subscribe(session, signup, now=NOW)
    found = subscriptions.find_by_email(session, email)
    assert found is not None
    token = subscriptions.confirm_token(signer, found)
    return subscriptions.confirm(session, signer, token, now=NOW).subscriber


def test_a_confirmation_owes_one_event_per_listening_endpoint_naming_the_reader_by_uid(
    session: Session, signer: TokenSigner
) -> None:
    by_uid = add_endpoint(session, ["subscriber.confirmed"])
    with_address = add_endpoint(session, ["subscriber.confirmed"], include_address=True)
    elsewhere = add_endpoint(session, ["release.sent"])
    reader = confirmed_reader(session, signer, "kari@mail.example")

    (plain,) = owed(session, by_uid)
    assert (plain.event_type, plain.status, plain.ordering_key) == (
        "subscriber.confirmed",
        WebhookEventStatus.PENDING,
        reader.uid,
    )
    assert body(plain) == {
        "type": "subscriber.confirmed",
        "timestamp": "2026-12-01T06:00:00Z",
        "data": {
            "subscriber": {
                "uid": reader.uid,
                "status": "confirmed",
                "language": "nb",
                "topics": ["kultur"],
                "release_id": None,
            }
        },
    }
    assert "kari@mail.example" not in plain.body
    (addressed,) = owed(session, with_address)
    assert body(addressed)["data"]["subscriber"]["email"] == "kari@mail.example"  # type: ignore[index]
    assert addressed.event_id != plain.event_id
    assert owed(session, elsewhere) == []
    assert set(session.info[webhook_outbox.TO_RING]) == {plain.id, addressed.id}


def test_a_rolled_back_change_leaves_no_event(
    app: Flask, session: Session, signer: TokenSigner
) -> None:
    add_endpoint(session, ["subscriber.confirmed"])
    savepoint = session.begin_nested()
    confirmed_reader(session, signer, "ola@mail.example")
    savepoint.rollback()
    assert owed(session) == []


def test_unsubscribing_twice_owes_one_event_with_the_release_of_the_link(
    session: Session, signer: TokenSigner
) -> None:
    reader = confirmed_reader(session, signer, "kari@mail.example")
    endpoint_id = add_endpoint(session, ["subscriber.unsubscribed"])
    subscriptions.unsubscribe_subscriber(session, reader, now=NOW)
    subscriptions.unsubscribe_subscriber(session, reader, now=NOW)
    (event,) = owed(session, endpoint_id)
    assert body(event)["data"]["subscriber"]["status"] == "unsubscribed"  # type: ignore[index]


def test_a_hard_bounce_and_a_complaint_owe_their_events(
    session: Session, signer: TokenSigner
) -> None:
    bouncing = confirmed_reader(session, signer, "gone@mail.example")
    complaining = confirmed_reader(session, signer, "angry@mail.example")
    endpoint_id = add_endpoint(session, EVERY_EVENT)
    for reader, kind in ((bouncing, ReportKind.HARD_BOUNCE), (complaining, ReportKind.COMPLAINT)):
        report = bounce_policy.Report(
            ReportDoor.FILE, "failed", "5.1.1", subscriber_id=reader.id, kind=kind
        )
        bounce_policy.take(session, report, now=NOW)
    kinds = {(e.ordering_key, e.event_type) for e in owed(session, endpoint_id)}
    assert kinds == {
        (bouncing.uid, "subscriber.bounced"),
        (complaining.uid, "subscriber.unsubscribed"),
    }


def draft_release(session: Session) -> Release:
    release = Release(
        slug="gagarin", title="Gagarin", language="nb", status=ReleaseStatus.DRAFT, body=""
    )
    session.add(release)
    session.flush()
    return release


def test_a_release_owes_published_paused_and_sent_in_order(session: Session) -> None:
    endpoint_id = add_endpoint(session, ["release.published", "release.paused", "release.sent"])
    release = draft_release(session)
    releases.publish(session, release.id, now=NOW)
    releases.publish(session, release.id, now=NOW)  # a double click: no second event
    releases.pause(session, release.id, reason="relay refused everyone", now=NOW)
    releases.resume(session, release.id)
    release.planned_at = NOW
    session.flush()
    assert ledger.finish_if_done(session, release, now=NOW)

    events = owed(session, endpoint_id)
    assert [e.event_type for e in events] == ["release.published", "release.paused", "release.sent"]
    assert {e.ordering_key for e in events} == {f"release-{release.id}"}
    paused = body(events[1])["data"]["release"]  # type: ignore[index]
    assert (paused["id"], paused["status"], paused["pause_reason"]) == (
        release.id,
        "paused",
        "relay refused everyone",
    )


def test_an_event_waits_while_an_earlier_one_for_the_same_reader_is_pending(
    session: Session, signer: TokenSigner
) -> None:
    endpoint_id = add_endpoint(session, EVERY_EVENT)
    kari = confirmed_reader(session, signer, "kari@mail.example")
    subscriptions.unsubscribe_subscriber(session, kari, now=NOW)
    ola = confirmed_reader(session, signer, "ola@mail.example")
    confirmed, unsubscribed, other = owed(session, endpoint_id)

    assert webhook_outbox.due(session, now=NOW) == [confirmed.id, other.id]
    assert webhook_outbox.claim(session, unsubscribed.id, now=NOW) is None  # behind its elder
    first = webhook_outbox.claim(session, confirmed.id, now=NOW)
    assert first is not None and first.attempt == 1
    assert webhook_outbox.claim(session, confirmed.id, now=NOW) is None  # held by that attempt
    assert webhook_outbox.claim(session, other.id, now=NOW) is not None  # another reader
    assert webhook_outbox.claim(session, unsubscribed.id, now=NOW) is None

    settled = webhook_outbox.settle(
        session, first, error=None, now=NOW, retry_seconds=86400, backoff_seconds=10
    )
    assert settled is not None and settled.status is WebhookEventStatus.DELIVERED
    assert settled.next_in_line == unsubscribed.id
    assert webhook_outbox.claim(session, unsubscribed.id, now=NOW) is not None
    assert ola.uid == other.ordering_key


def test_failures_back_off_with_jitter_until_the_window_ends_then_fail(
    session: Session, signer: TokenSigner
) -> None:
    endpoint_id = add_endpoint(session, ["subscriber.confirmed"])
    confirmed_reader(session, signer, "kari@mail.example")
    (event,) = owed(session, endpoint_id)
    window, base = 120.0, 10.0
    now = NOW
    waits = []
    while True:
        attempt = webhook_outbox.claim(session, event.id, now=now)
        assert attempt is not None
        settled = webhook_outbox.settle(
            session, attempt, error="HTTP 500", now=now, retry_seconds=window, backoff_seconds=base
        )
        assert settled is not None
        if settled.retry_at is None:
            break
        waits.append((settled.retry_at - now).total_seconds())
        now = settled.retry_at

    session.refresh(event)
    assert event.status is WebhookEventStatus.FAILED and event.last_error == "HTTP 500"
    assert event.finished_at == NOW + timedelta(seconds=window)  # a last attempt at the end
    for number, wait in enumerate(waits[:-1], start=1):
        ceiling = base * 2 ** (number - 1)
        assert ceiling / 2 <= wait <= ceiling
    assert len(waits) >= 3


def test_an_attempt_whose_worker_vanished_is_made_again_after_the_lease(
    session: Session, signer: TokenSigner
) -> None:
    endpoint_id = add_endpoint(session, ["subscriber.confirmed"])
    confirmed_reader(session, signer, "kari@mail.example")
    (event,) = owed(session, endpoint_id)
    lost = webhook_outbox.claim(session, event.id, now=NOW)
    assert lost is not None
    later = NOW + webhook_outbox.LEASE
    assert webhook_outbox.due(session, now=later) == [event.id]
    again = webhook_outbox.claim(session, event.id, now=later)
    assert again is not None and again.attempt == 2 and again.event_id == lost.event_id
    assert (
        webhook_outbox.settle(
            session, lost, error=None, now=later, retry_seconds=86400, backoff_seconds=10
        )
        is None
    ), "the lost attempt's answer does not overwrite the later attempt"


def test_an_erasure_takes_the_address_out_of_every_event_kept(
    session: Session, signer: TokenSigner
) -> None:
    endpoint_id = add_endpoint(session, ["subscriber.confirmed"], include_address=True)
    reader = confirmed_reader(session, signer, "kari@mail.example")
    subscriptions.erase(session, reader, now=NOW)
    (event,) = owed(session, endpoint_id)
    assert "kari@mail.example" not in event.body
    assert body(event)["data"]["subscriber"]["uid"] == reader.uid  # type: ignore[index]


@pytest.mark.parametrize(
    ("url", "events"),
    [
        ("ftp://crm.example/hooks", ["release.sent"]),
        ("https://", ["release.sent"]),
        ("crm.example/hooks", ["release.sent"]),
        ("https://user:pw@crm.example/hooks", ["release.sent"]),
        ("https://crm.example/hooks", []),
        ("https://crm.example/hooks", ["release.deleted"]),
    ],
)
def test_bad_endpoints_are_refused(session: Session, url: str, events: list[str]) -> None:
    with pytest.raises(InvalidInput):
        webhook_endpoints.add(session, url, events, include_address=False, now=NOW)


INTERNAL = [
    "http://127.0.0.1:8080/hooks",
    "http://127.1/hooks",
    "http://2130706433/hooks",
    "http://localhost/hooks",
    "http://LOCALHOST./hooks",
    "http://metrics.localhost/hooks",
    "http://[::1]/hooks",
    "http://[::ffff:127.0.0.1]/hooks",
    "http://10.0.0.5/hooks",
    "https://192.168.1.1/hooks",
    "http://172.16.0.1/hooks",
    "http://100.64.0.1/hooks",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/hooks",
    "http://[fd00::1]/hooks",
    "http://0.0.0.0/hooks",
    "http://[::]/hooks",
    "http://224.0.0.1/hooks",
    "http://240.0.0.1/hooks",
]


@pytest.mark.parametrize("url", INTERNAL)
def test_internal_addresses_are_refused_unless_allowed(session: Session, url: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        webhook_endpoints.add(session, url, ["release.sent"], include_address=False, now=NOW)
    assert "internal network address" in refused.value.message
    assert owed(session) == [] and webhook_endpoints.every(session) == []
    added = webhook_endpoints.add(
        session, url, ["release.sent"], include_address=False, now=NOW, allow_private=True
    )
    assert added.endpoint.url == url


@pytest.mark.parametrize(
    "url",
    [
        "https://crm.example/hooks",
        "https://93.184.215.14/hooks",
        "https://[2606:4700:4700::1111]/hooks",
        "http://localhost.example/hooks",
    ],
)
def test_public_addresses_and_names_are_taken(session: Session, url: str) -> None:
    added = webhook_endpoints.add(session, url, ["release.sent"], include_address=False, now=NOW)
    assert added.endpoint.url == url
