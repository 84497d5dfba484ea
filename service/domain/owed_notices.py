"""Notices a reader is owed (confirmation, already subscribed, welcome), recorded durably.

The transaction that owes a notice records it on the subscriber row (`notice_owed`,
`notice_owed_at`); after the commit the door rings the task queue and, once the queue has the
task, settles the record. A ring that fails (Redis down) leaves the record, and the sweep rings
again for every record older than RING_AFTER. So "check your inbox" is never a lie: the notice
is in the queue or in the database. Once queued, Celery's late acknowledgement carries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.models import OwedNotice, Subscriber, SubscriberStatus

RING_AFTER = timedelta(minutes=1)  # a record this old was not rung (or its ring was lost)


def still_owed(notice: OwedNotice, subscriber: Subscriber | None) -> bool:
    """Whether a notice queued earlier should still go out now, as the reader stands: a
    confirmation only while the address is not confirmed (a click on an earlier link made it
    moot); "already subscribed" and the welcome only while it is."""
    if subscriber is None:
        return False
    confirmed = subscriber.status is SubscriberStatus.CONFIRMED
    return not confirmed if notice is OwedNotice.CONFIRMATION else confirmed


@dataclass(frozen=True)
class Owed:
    subscriber_uid: str
    notice: OwedNotice
    owed_at: datetime


def owe(subscriber: Subscriber, notice: OwedNotice, *, now: datetime) -> Owed:
    """Record the notice on the row (flushed with the caller's transaction); a later one
    replaces an earlier one still unrung: only the newest is still true."""
    subscriber.notice_owed = notice
    subscriber.notice_owed_at = now
    return Owed(subscriber.uid, notice, now)


def settle(session: Session, owed: Owed) -> bool:
    """The queue has it: clear the record, unless a newer notice replaced it meanwhile."""
    return bool(
        session.execute(
            update(Subscriber)
            .where(
                Subscriber.uid == owed.subscriber_uid,
                Subscriber.notice_owed == owed.notice,
                Subscriber.notice_owed_at == owed.owed_at,
            )
            .values(notice_owed=None, notice_owed_at=None)
            .execution_options(synchronize_session=False)
        ).rowcount
    )


def unrung(session: Session, *, now: datetime, limit: int = 500) -> list[Owed]:
    """Records older than RING_AFTER, oldest first: their ring failed or was never made."""
    rows = session.execute(
        select(Subscriber.uid, Subscriber.notice_owed, Subscriber.notice_owed_at)
        .where(Subscriber.notice_owed_at <= now - RING_AFTER)
        .order_by(Subscriber.notice_owed_at)
        .limit(limit)
    ).all()
    return [Owed(uid, notice, at) for uid, notice, at in rows if notice is not None]
