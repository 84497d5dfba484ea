"""Bounces after the fact: undoing blame that a misjudged refusal put on readers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.domain import subscription_events
from service.models import (
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
    join in the list's history. For an operator whose relay refused everyone in a way Pressroom
    took for the readers' fault. Returns how many readers it restored (or would, `dry_run`)."""
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
    session.flush()
    return len(restored)
