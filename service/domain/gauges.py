"""What a metrics scrape reads from the database: readers by status, releases by status, and
the deliveries still owed. Counts only: no address, no title, no id."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.models import (
    Delivery,
    DeliveryStatus,
    Release,
    ReleaseKind,
    ReleaseStatus,
    Subscriber,
    SubscriberStatus,
)


@dataclass(frozen=True)
class Gauges:
    subscribers: dict[str, int]  # by SubscriberStatus value, every status present (0 if none)
    releases: dict[str, int]  # by ReleaseStatus value, likewise
    deliveries_owed: int  # delivery rows pending or claimed: readers still to get a release


def read(session: Session) -> Gauges:
    """One GROUP BY per table: cheap enough for a scrape every 15 s on a large list."""
    subscribers = {status.value: 0 for status in SubscriberStatus}
    for status, count in session.execute(
        select(Subscriber.status, func.count()).group_by(Subscriber.status)
    ):
        subscribers[SubscriberStatus(status).value] = count
    releases = {status.value: 0 for status in ReleaseStatus}
    for status, count in session.execute(
        select(Release.status, func.count())
        .where(Release.kind == ReleaseKind.RELEASE)  # digest runs are no releases
        .group_by(Release.status)
    ):
        releases[ReleaseStatus(status).value] = count
    owed = session.scalar(
        select(func.count())
        .select_from(Delivery)
        .where(Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]))
    )
    return Gauges(subscribers, releases, owed or 0)
