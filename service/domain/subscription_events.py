"""Writing the anonymous log of joins and departures that the desk's charts read.

Callers record a move only when it really happened (a confirmed reader became unsubscribed,
not a second click on the same link), so that counts and the running total stay exact.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import String, insert, literal, select
from sqlalchemy.orm import Session

from service.models import Release, Subscriber, SubscriptionEvent, SubscriptionEventKind


def record(
    session: Session,
    kind: SubscriptionEventKind,
    *,
    at: datetime,
    release_id: int | None = None,
) -> None:
    """One move into or out of the confirmed list, attributed to a release when one is known
    (and still exists: a link in an old email may name a release deleted since)."""
    if release_id is not None:
        release_id = session.scalar(select(Release.id).where(Release.id == release_id))
    session.execute(
        insert(SubscriptionEvent.__table__).values(kind=kind, occurred_at=at, release_id=release_id)
    )


def record_each(
    session: Session, kind: SubscriptionEventKind, subscriber_ids: Collection[int], *, at: datetime
) -> None:
    """The same move for many readers at once (an import): one INSERT ... SELECT, one row per
    reader, built by the database. Only the count is kept, not who they were."""
    if subscriber_ids:
        session.execute(
            insert(SubscriptionEvent.__table__).from_select(
                ["kind", "occurred_at"],
                select(
                    literal(kind.value, String()),
                    literal(at, SubscriptionEvent.__table__.c.occurred_at.type),
                ).where(Subscriber.id.in_(list(subscriber_ids))),
            )
        )
