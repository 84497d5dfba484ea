"""The outbox of outgoing webhooks: events written in the transaction of the change that
causes them (a reader confirmed, unsubscribed or bounced; a release published, sent or
paused), one row per endpoint that asked for the type, then claimed and settled by the
workers (service/sending/webhook_posts.py).

Rules (README "Outgoing webhooks"):
- at least once: an attempt is claimed by moving `next_attempt_at` past its own end (LEASE),
  so an attempt whose worker vanished is made again; the `webhook-id` lets receivers drop
  repeats;
- in order per endpoint and reader (or release): an event is not attempted while an earlier
  one of the same `ordering_key` is still pending for that endpoint;
- retries: exponential backoff with jitter from WEBHOOK_BACKOFF_SECONDS, doubling each time
  up to MAX_BACKOFF, until WEBHOOK_RETRY_SECONDS after the event (a last attempt is made
  then); an event whose last attempt failed is failed, and the next in line goes ahead;
- readers are named by uid; the address only for an endpoint with include_address.

The door that committed rings the ids listed in `session.info[TO_RING]` (service/webhook_bell);
the sweep rings whatever is due and was not (a lost ring delays, never loses).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, select, update
from sqlalchemy.orm import Session, aliased

from service.domain.webhook_endpoints import EventType, listening
from service.logs import redact
from service.models import (
    Release,
    ReleaseKind,
    Subscriber,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventStatus,
)

TO_RING = "pressroom.webhook_events"  # session.info: outbox ids written, to ring after commit
LEASE = timedelta(seconds=60)  # an attempt's hold: 3x the POST's deadline (webhook_http)
MAX_BACKOFF = timedelta(hours=1)
KEEP_DELIVERED = timedelta(days=7)
KEEP_FAILED = timedelta(days=30)
MAX_ERROR = 300


@dataclass(frozen=True)
class Attempt:
    """A claimed attempt: what to POST where, and which attempt of the event it is."""

    row_id: int
    event_id: str
    event_type: str
    url: str
    secret: str
    body: str
    attempt: int


@dataclass(frozen=True)
class Problem:
    """A failed event, or one still being retried, for the desk."""

    endpoint_id: int
    event_id: str
    event_type: str
    status: WebhookEventStatus
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def subscriber_changed(
    session: Session,
    event_type: EventType,
    subscriber: Subscriber,
    *,
    now: datetime,
    release_id: int | None = None,
) -> int:
    """Owe `event_type` about `subscriber` (as the row is now) to every endpoint that asked
    for it. `release_id`: the release whose link or copy the change came from, when known.
    Returns the number of events written."""
    return subscribers_changed(session, event_type, [subscriber], now=now, release_id=release_id)


def subscribers_changed(
    session: Session,
    event_type: EventType,
    subscribers: Iterable[Subscriber],
    *,
    now: datetime,
    release_id: int | None = None,
) -> int:
    """subscriber_changed for many readers (an import's chunk), in one INSERT."""
    endpoints = listening(session, event_type)
    if not endpoints:
        return 0
    rows = []
    for subscriber in subscribers:
        data: dict[str, Any] = {
            "uid": subscriber.uid,
            "status": subscriber.status.value,
            "language": subscriber.language,
            "topics": subscriber.topics,
            "release_id": release_id,
        }
        for endpoint in endpoints:
            shown = {**data, "email": subscriber.email} if endpoint.include_address else data
            rows.append(
                _event(endpoint, event_type, {"subscriber": shown}, subscriber.uid, now=now)
            )
    _owe(session, rows)
    return len(rows)


def release_changed(
    session: Session, event_type: EventType, release: Release, *, now: datetime
) -> int:
    """Owe `event_type` about `release` (as the row is now); the number of events written.
    A digest run is no release of the press office's: it owes none."""
    if release.kind is ReleaseKind.DIGEST:
        return 0
    data = {
        "id": release.id,
        "slug": release.slug,
        "title": release.title,
        "language": release.language,
        "status": release.status.value,
        "published_at": _iso(release.published_at),
        # A relay's reply may quote a reader's address: never to an endpoint.
        "pause_reason": redact(release.pause_reason) if release.pause_reason else None,
    }
    key = f"release-{release.id}"
    rows = [
        _event(endpoint, event_type, {"release": data}, key, now=now)
        for endpoint in listening(session, event_type)
    ]
    _owe(session, rows)
    return len(rows)


def _event(
    endpoint: WebhookEndpoint,
    event_type: EventType,
    data: dict[str, Any],
    ordering_key: str,
    *,
    now: datetime,
) -> WebhookEvent:
    body = {"type": event_type.value, "timestamp": _iso(now), "data": data}
    return WebhookEvent(
        event_id="msg_" + uuid.uuid4().hex,
        endpoint_id=endpoint.id,
        event_type=event_type.value,
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        ordering_key=ordering_key,
        status=WebhookEventStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


def _owe(session: Session, rows: list[WebhookEvent]) -> None:
    """Insert the events (in their order: ids keep each line's order) and list them to ring."""
    if not rows:
        return
    session.add_all(rows)
    session.flush()
    session.info.setdefault(TO_RING, []).extend(row.id for row in rows)


def _no_earlier_pending() -> Any:
    earlier = aliased(WebhookEvent)
    return ~exists().where(
        earlier.endpoint_id == WebhookEvent.endpoint_id,
        earlier.ordering_key == WebhookEvent.ordering_key,
        earlier.status == WebhookEventStatus.PENDING,
        earlier.id < WebhookEvent.id,
    )


def claim(session: Session, row_id: int, *, now: datetime) -> Attempt | None:
    """Take the next attempt of event `row_id` when it is due and first in its line: it is
    held for LEASE. None when it is not pending, not due, waits behind an earlier one, or
    another worker took it first (compare-and-set on the due time)."""
    won = session.execute(
        update(WebhookEvent)
        .where(
            WebhookEvent.id == row_id,
            WebhookEvent.status == WebhookEventStatus.PENDING,
            WebhookEvent.next_attempt_at <= now,
            _no_earlier_pending(),
        )
        .values(attempts=WebhookEvent.attempts + 1, next_attempt_at=now + LEASE)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not won:
        return None
    row = session.execute(
        select(WebhookEvent, WebhookEndpoint)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookEvent.endpoint_id)
        .where(WebhookEvent.id == row_id)
        .execution_options(populate_existing=True)
    ).one()
    event, endpoint = row
    return Attempt(
        row_id=event.id,
        event_id=event.event_id,
        event_type=event.event_type,
        url=endpoint.url,
        secret=endpoint.secret,
        body=event.body,
        attempt=event.attempts,
    )


def backoff(attempt: int, base_seconds: float) -> timedelta:
    """The wait after failed attempt number `attempt` (1, 2, ...): base * 2^(attempt-1),
    at most MAX_BACKOFF, with jitter (somewhere in its upper half)."""
    ceiling = min(base_seconds * 2 ** min(attempt - 1, 40), MAX_BACKOFF.total_seconds())
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


@dataclass(frozen=True)
class Settled:
    status: WebhookEventStatus
    retry_at: datetime | None  # when pending again: the next attempt's time
    next_in_line: int | None  # delivered or failed: the event that may go now


def settle(
    session: Session,
    attempt: Attempt,
    *,
    error: str | None,
    now: datetime,
    retry_seconds: float,
    backoff_seconds: float,
) -> Settled | None:
    """Record how `attempt` went: `error` None for a 2xx, else what went wrong (kept for the
    desk, cut to MAX_ERROR). None when the attempt was no longer this worker's (its lease
    ran out and another attempt was claimed): the later attempt records its own."""
    event = session.get(WebhookEvent, attempt.row_id, with_for_update=True, populate_existing=True)
    if (
        event is None
        or event.status is not WebhookEventStatus.PENDING
        or event.attempts != attempt.attempt
    ):
        return None
    deadline = event.created_at + timedelta(seconds=retry_seconds)
    if error is None:
        event.status, event.finished_at, event.last_error = WebhookEventStatus.DELIVERED, now, None
    else:
        event.last_error = error[:MAX_ERROR]
        if now >= deadline:
            event.status, event.finished_at = WebhookEventStatus.FAILED, now
        else:
            event.next_attempt_at = min(now + backoff(event.attempts, backoff_seconds), deadline)
    session.flush()
    if event.status is WebhookEventStatus.PENDING:
        return Settled(event.status, event.next_attempt_at, None)
    following = session.scalar(
        select(WebhookEvent.id)
        .where(
            WebhookEvent.endpoint_id == event.endpoint_id,
            WebhookEvent.ordering_key == event.ordering_key,
            WebhookEvent.status == WebhookEventStatus.PENDING,
            WebhookEvent.id > event.id,
        )
        .order_by(WebhookEvent.id)
        .limit(1)
    )
    return Settled(event.status, None, following)


def due(session: Session, *, now: datetime, limit: int = 500) -> list[int]:
    """Pending events due now and first in their line, oldest first (for the sweep)."""
    return list(
        session.scalars(
            select(WebhookEvent.id)
            .where(
                WebhookEvent.status == WebhookEventStatus.PENDING,
                WebhookEvent.next_attempt_at <= now,
                _no_earlier_pending(),
            )
            .order_by(WebhookEvent.id)
            .limit(limit)
        )
    )


def counts(session: Session) -> dict[int, dict[str, int]]:
    """{endpoint id: {status: events}} over the events kept."""
    from sqlalchemy import func

    rows = session.execute(
        select(WebhookEvent.endpoint_id, WebhookEvent.status, func.count()).group_by(
            WebhookEvent.endpoint_id, WebhookEvent.status
        )
    )
    found: dict[int, dict[str, int]] = {}
    for endpoint_id, status, number in rows:
        found.setdefault(endpoint_id, {})[WebhookEventStatus(status).value] = number
    return found


def problems(session: Session, *, limit: int = 50) -> list[Problem]:
    """Failed events and those being retried, the latest first."""
    rows = session.scalars(
        select(WebhookEvent)
        .where(
            (WebhookEvent.status == WebhookEventStatus.FAILED)
            | and_(
                WebhookEvent.status == WebhookEventStatus.PENDING,
                WebhookEvent.last_error.is_not(None),
            )
        )
        .order_by(WebhookEvent.id.desc())
        .limit(limit)
    )
    return [
        Problem(
            r.endpoint_id,
            r.event_id,
            r.event_type,
            r.status,
            r.attempts,
            r.last_error,
            r.created_at,
            r.next_attempt_at,
        )
        for r in rows
    ]


def forget_address(session: Session, subscriber: Subscriber) -> None:
    """A reader erased: no event kept or owed goes on carrying their address."""
    rows = session.scalars(select(WebhookEvent).where(WebhookEvent.ordering_key == subscriber.uid))
    for row in rows:
        body = json.loads(row.body)
        shown = body.get("data", {}).get("subscriber", {})
        if "email" in shown:
            del shown["email"]
            row.body = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    session.flush()


def prune(session: Session, *, now: datetime) -> int:
    """Drop delivered events after KEEP_DELIVERED and failed ones after KEEP_FAILED."""
    gone = session.execute(
        delete(WebhookEvent).where(
            (
                (WebhookEvent.status == WebhookEventStatus.DELIVERED)
                & (WebhookEvent.finished_at < now - KEEP_DELIVERED)
            )
            | (
                (WebhookEvent.status == WebhookEventStatus.FAILED)
                & (WebhookEvent.finished_at < now - KEEP_FAILED)
            )
        )
    ).rowcount
    return int(gone or 0)
