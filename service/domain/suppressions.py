"""The suppression list: addresses no release, notice or import may reach, and why (an
erasure, a bounce, a complaint), with the release that put them there.

Lifting one takes a note and is kept (SuppressionLift): who, when, why. A reader suppressed
for bouncing is a confirmed reader again (their score back to 0, a join in the list's
history); one who complained stays unsubscribed (only they can subscribe again, and now may);
an erased address may be imported or subscribed again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.domain import subscription_events, webhook_outbox
from service.domain.errors import N_, InvalidInput, NotFound
from service.domain.webhook_endpoints import EventType
from service.models import (
    Subscriber,
    SubscriberStatus,
    SubscriptionEventKind,
    Suppression,
    SuppressionLift,
    SuppressionReason,
    address_hash,
)

log = logging.getLogger(__name__)

MAX_NOTE = 500


@dataclass(frozen=True)
class Entry:
    id: int
    email: str | None  # None for an erasure: only a hash of the address is kept
    reason: SuppressionReason
    created_at: datetime
    release_id: int | None


def page(session: Session, *, after: int, limit: int) -> list[Entry]:
    """Suppressions by id, those after `after`, at most `limit`."""
    rows = session.scalars(
        select(Suppression).where(Suppression.id > after).order_by(Suppression.id).limit(limit)
    )
    return [Entry(r.id, r.email, r.reason, r.created_at, r.release_id) for r in rows]


def lift(
    session: Session, email: str, *, note: str, by_publisher: int | None, now: datetime
) -> SuppressionReason:
    """Lift the suppression of `email` (a normalized address); the reason it had.

    Raises InvalidInput for an empty or long note, NotFound when the address is not
    suppressed."""
    note = " ".join(note.split())
    if not note or len(note) > MAX_NOTE:
        raise InvalidInput(N_("Say why in a note of 1 to %(count)s characters."), count=MAX_NOTE)
    digest = address_hash(email)
    suppression = session.scalar(
        select(Suppression).where(Suppression.email_hash == digest).with_for_update()
    )
    if suppression is None:
        raise NotFound(N_("This address is not on the suppression list."))
    session.add(
        SuppressionLift(
            email_hash=digest,
            reason=suppression.reason,
            suppressed_at=suppression.created_at,
            lifted_at=now,
            lifted_by_id=by_publisher,
            note=note,
        )
    )
    reason = suppression.reason
    session.execute(delete(Suppression).where(Suppression.id == suppression.id))
    subscriber = session.scalar(select(Subscriber).where(Subscriber.email == email))
    if reason is SuppressionReason.BOUNCED and subscriber is not None:
        if subscriber.status is SubscriberStatus.BOUNCED:
            subscriber.status = SubscriberStatus.CONFIRMED
            subscription_events.record(session, SubscriptionEventKind.CONFIRMED, at=now)
            # Only a reader confirmed again is news: one confirmed all along is not.
            webhook_outbox.subscriber_changed(
                session, EventType.SUBSCRIBER_CONFIRMED, subscriber, now=now
            )
        subscriber.bounce_score = 0
        subscriber.last_bounce_at = None
    session.flush()
    log.info("suppression lifted (%s) by publisher %s", reason.value, by_publisher)
    return reason
