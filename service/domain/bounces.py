"""Bounces after the fact: undoing blame that a misjudged refusal put on readers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from service.domain import subscription_events, webhook_outbox
from service.domain.webhook_endpoints import EventType
from service.models import (
    BounceReport,
    ReportOutcome,
    Subscriber,
    SubscriberStatus,
    SubscriptionEventKind,
    Suppression,
    SuppressionReason,
)
from service.models.suppression import address_hash


def unbounce(session: Session, *, since: datetime, now: datetime, dry_run: bool = False) -> int:
    """Readers marked bounced at or after `since` (an aware datetime) are confirmed readers
    again: their bounce score is reset, their suppression lifted, and their return logged as a
    join in the list's history. Readers still confirmed lose the points that bounces since
    then scored (bounce_policy's reports with outcome "scored"). For an operator whose relay
    refused everyone in a way Pressroom took for the readers' fault. Returns how many readers
    were marked bounced and are restored (or would be, `dry_run`)."""
    if not dry_run:
        _unscore_confirmed(session, since=since)
    suppressed = {
        row.email_hash: row.id
        for row in session.execute(
            select(Suppression.email_hash, Suppression.id).where(
                Suppression.reason == SuppressionReason.BOUNCED, Suppression.created_at >= since
            )
        )
    }
    if not suppressed:
        return 0
    restored: list[tuple[Subscriber, int]] = []
    for subscriber in session.scalars(
        select(Subscriber)
        .where(Subscriber.status == SubscriberStatus.BOUNCED)
        .execution_options(yield_per=1000)
    ):
        suppression_id = suppressed.get(address_hash(subscriber.email))
        if suppression_id is not None:
            restored.append((subscriber, suppression_id))
    if dry_run:
        return len(restored)
    for subscriber, suppression_id in restored:
        subscriber.status = SubscriberStatus.CONFIRMED
        subscriber.bounce_score = 0
        session.execute(delete(Suppression).where(Suppression.id == suppression_id))
        subscription_events.record(session, SubscriptionEventKind.CONFIRMED, at=now)
        webhook_outbox.subscriber_changed(
            session, EventType.SUBSCRIBER_CONFIRMED, subscriber, now=now
        )
    session.flush()
    return len(restored)


def _unscore_confirmed(session: Session, *, since: datetime) -> None:
    scored_since = (
        select(BounceReport.subscriber_id, func.count().label("points"))
        .where(BounceReport.outcome == ReportOutcome.SCORED, BounceReport.received_at >= since)
        .group_by(BounceReport.subscriber_id)
        .subquery()
    )
    for subscriber, points in session.execute(
        select(Subscriber, scored_since.c.points)
        .join(scored_since, scored_since.c.subscriber_id == Subscriber.id)
        .where(Subscriber.status == SubscriberStatus.CONFIRMED, Subscriber.bounce_score > 0)
    ):
        subscriber.bounce_score = max(0, subscriber.bounce_score - points)
