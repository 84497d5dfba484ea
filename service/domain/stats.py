"""The numbers behind the desk's charts: the list's size over time, and what each release did.

Subscribers over time come from the anonymous event log (joins and departures per day, in the
desk's time zone); the list's size on each day is counted back from today's real number of
confirmed readers, so the line ends where the subscribers page does. Per release: its delivery
rows (delivered, failed) and the readers who left through that release's unsubscribe link.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date, case, cast, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from service.domain import send_guards
from service.domain.errors import N_, InvalidInput
from service.domain.releases import delivery_counts_of
from service.models import (
    Release,
    ReleaseKind,
    ReportKind,
    Subscriber,
    SubscriberStatus,
    SubscriptionEvent,
    SubscriptionEventKind,
)

WINDOWS = (30, 90, 365)  # days the desk offers
DEFAULT_WINDOW = 30
RELEASES_SHOWN = 12


def parse_window(raw: object) -> int:
    """The number of days to show: one of WINDOWS; nothing given means DEFAULT_WINDOW."""
    if raw is None or raw == "":
        return DEFAULT_WINDOW
    text = str(raw).strip()
    if not text.isdigit() or int(text) not in WINDOWS:
        raise InvalidInput(
            N_("Choose a period of %(choices)s days."),
            choices=", ".join(str(days) for days in WINDOWS),
        )
    return int(text)


@dataclass(frozen=True)
class Day:
    day: date
    confirmed: int  # readers who joined the list (confirmed, or imported as confirmed)
    unsubscribed: int
    bounced: int
    erased: int
    total: int  # confirmed readers at the end of the day

    @property
    def left(self) -> int:
        return self.unsubscribed + self.bounced + self.erased

    @property
    def net(self) -> int:
        return self.confirmed - self.left


@dataclass(frozen=True)
class SubscriberHistory:
    days: list[Day]
    current: int  # confirmed readers now
    start_total: int  # confirmed readers just before the first day

    @property
    def confirmed(self) -> int:
        return sum(d.confirmed for d in self.days)

    @property
    def left(self) -> int:
        return sum(d.left for d in self.days)

    @property
    def net(self) -> int:
        return self.confirmed - self.left


def subscriber_history(
    session: Session, *, days: int, now: datetime, zone: ZoneInfo
) -> SubscriberHistory:
    """Joins and departures per local day over the last `days` days (today included), with
    the number of confirmed readers at the end of each day. One GROUP BY over the window."""
    today = now.astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    start = _local_midnight(first, zone)
    end = _local_midnight(today + timedelta(days=1), zone)

    events = (
        select(
            _local_day(session, SubscriptionEvent.occurred_at, zone, start, end).label("day"),
            SubscriptionEvent.kind.label("kind"),
        )
        .where(SubscriptionEvent.occurred_at >= start, SubscriptionEvent.occurred_at < end)
        .subquery()
    )
    counts: dict[date, dict[SubscriptionEventKind, int]] = {}
    for day, kind, count in session.execute(
        select(events.c.day, events.c.kind, func.count()).group_by(events.c.day, events.c.kind)
    ):
        if isinstance(day, str):  # SQLite's date() answers text
            day = date.fromisoformat(day)
        counts.setdefault(day, {})[SubscriptionEventKind(kind)] = count

    current = (
        session.scalar(
            select(func.count())
            .select_from(Subscriber)
            .where(Subscriber.status == SubscriberStatus.CONFIRMED)
        )
        or 0
    )
    # Walk back from today: the list at the end of a day is today's list less what came after.
    result: list[Day] = []
    total = current
    for offset in range(days):
        day = today - timedelta(days=offset)
        by_kind = counts.get(day, {})
        entry = Day(
            day=day,
            # An undone unsubscribe is a join: its departure was counted when it happened.
            confirmed=by_kind.get(SubscriptionEventKind.CONFIRMED, 0)
            + by_kind.get(SubscriptionEventKind.RESTORED, 0),
            unsubscribed=by_kind.get(SubscriptionEventKind.UNSUBSCRIBED, 0),
            bounced=by_kind.get(SubscriptionEventKind.BOUNCED, 0),
            erased=by_kind.get(SubscriptionEventKind.ERASED, 0),
            total=total,
        )
        result.append(entry)
        total -= entry.net
    result.reverse()
    return SubscriberHistory(days=result, current=current, start_total=total)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def _local_day(
    session: Session,
    column: Any,
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
) -> ColumnElement[Any]:
    """The calendar day in `zone` of a UTC timestamp column, computed by the database."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone(zone.key, column), Date)
    # SQLite has no time zone database: shift by the zone's UTC offset, which changes only at
    # the few transitions (summer time) inside the window.
    segments = _offsets(zone, start, end)
    shifted = [func.date(column, f"{offset:+d} minutes") for _, offset in segments]
    if len(shifted) == 1:
        return shifted[0]
    return case(
        *[
            (column < until, expression)
            for (until, _), expression in zip(segments[1:], shifted[:-1], strict=True)
        ],
        else_=shifted[-1],
    )


def _offsets(zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, int]]:
    """(from, offset in minutes) for each stretch of constant UTC offset between start and end."""

    def offset(moment: datetime) -> int:
        delta = moment.astimezone(zone).utcoffset() or timedelta(0)
        return int(delta.total_seconds() // 60)

    segments = [(start, offset(start))]
    moment = start
    while moment < end:
        step = min(moment + timedelta(days=1), end)
        if offset(step) != segments[-1][1]:
            low, high = moment, step  # the change lies in (low, high]: halve to the minute
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                if offset(middle) == segments[-1][1]:
                    low = middle
                else:
                    high = middle
            high = high.replace(second=0, microsecond=0)
            if offset(high) == segments[-1][1]:
                high += timedelta(minutes=1)
            segments.append((high, offset(high)))
        moment = step
    return segments


@dataclass(frozen=True)
class ReleaseOutcome:
    release_id: int
    title: str
    sent_at: datetime | None
    status: str
    recipients: int
    delivered: int
    failed: int
    pending: int
    unsubscribed: int  # readers who left through this release's unsubscribe link
    bounced: int = 0  # hard bounces: refused at once or reported later (bounce_policy)
    complained: int = 0  # readers who marked it as spam (feedback loops, provider events)

    @property
    def unsubscribe_rate(self) -> float | None:
        """Unsubscribes per delivered message, or None before anything was delivered."""
        return self.unsubscribed / self.delivered if self.delivered else None


def release_outcomes(session: Session, *, limit: int = RELEASES_SHOWN) -> list[ReleaseOutcome]:
    """The last `limit` releases sent by email, oldest first: delivery, hard bounces,
    complaints and unsubscribes."""
    rows: Sequence[Release] = session.scalars(
        select(Release)
        .where(Release.send_started_at.is_not(None), Release.kind == ReleaseKind.RELEASE)
        .order_by(Release.send_started_at.desc(), Release.id.desc())
        .limit(limit)
    ).all()
    ids = [release.id for release in rows]
    if not ids:
        return []
    deliveries = delivery_counts_of(session, ids)
    reports = send_guards.reported_of(session, ids)
    unsubscribes = dict(
        session.execute(
            select(SubscriptionEvent.release_id, func.count())
            .where(
                SubscriptionEvent.release_id.in_(ids),
                SubscriptionEvent.kind == SubscriptionEventKind.UNSUBSCRIBED,
            )
            .group_by(SubscriptionEvent.release_id)
        ).all()
    )
    return [
        ReleaseOutcome(
            release_id=release.id,
            title=release.title,
            sent_at=release.send_started_at,
            status=release.status.value,
            recipients=deliveries[release.id]["total"],
            delivered=deliveries[release.id]["sent"],
            failed=deliveries[release.id]["failed"],
            pending=deliveries[release.id]["pending"],
            unsubscribed=unsubscribes.get(release.id, 0),
            bounced=reports.get(release.id, {}).get(ReportKind.HARD_BOUNCE, 0),
            complained=reports.get(release.id, {}).get(ReportKind.COMPLAINT, 0),
        )
        for release in reversed(rows)
    ]
