"""Guards on a send: a release that draws too many complaints or hard bounces pauses itself.

- complaints above COMPLAINT_RATE_LIMIT (0.003) of the messages delivered, once at least
  300 were delivered: Gmail and Yahoo throttle or block a sender above a 0.3 % spam rate
  (Gmail's email sender guidelines, 2024; Yahoo's sender best practices);
- hard bounces above BOUNCE_RATE_LIMIT (0.05) of the messages attempted, once at least 300
  were attempted: usually a bad import, which a send must not burn the domain's name on;
- refusals of the message itself (bounce_policy's "refusal": spam, policy, content) above
  the same share: the receivers object to the message or to us, and every further copy
  deepens it. Nobody on the list is blamed for them.

Both kinds count whether the relay refused during the SMTP conversation or a report came
back later (bounce_policy counts a delivery once).

A resume waives the guard that paused the release for the rest of that send: the press
staff have seen the figures and chosen to go on (the other guard still holds; see
releases.resume).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service.config import Settings
from service.db import utcnow
from service.domain import webhook_outbox
from service.domain.webhook_endpoints import EventType
from service.models import (
    BounceReport,
    Delivery,
    DeliveryStatus,
    Release,
    ReleaseStatus,
    ReportKind,
)

MIN_DELIVERED = 300
MIN_ATTEMPTED = 300


class Guard(enum.StrEnum):
    COMPLAINTS = "complaints"
    BOUNCES = "bounces"
    REFUSALS = "refusals"


@dataclass(frozen=True)
class Limits:
    """COMPLAINT_RATE_LIMIT and BOUNCE_RATE_LIMIT, as shares (0.003 is 0.3 %)."""

    complaints: float = 0.003
    bounces: float = 0.05

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(settings.complaint_rate_limit, settings.bounce_rate_limit)


@dataclass(frozen=True)
class Figures:
    delivered: int  # delivery rows sent
    attempted: int  # sent or failed
    complaints: int
    hard_bounces: int  # refused during the send or reported after it
    refusals: int = 0  # of the message itself, as hard_bounces


def figures(session: Session, release_id: int) -> Figures:
    by_status = dict(
        session.execute(
            select(Delivery.status, func.count())
            .where(
                Delivery.release_id == release_id,
                Delivery.status.in_([DeliveryStatus.SENT, DeliveryStatus.FAILED]),
            )
            .group_by(Delivery.status)
        ).all()
    )
    by_kind = reported(session, release_id)
    sent = by_status.get(DeliveryStatus.SENT, 0)
    return Figures(
        delivered=sent,
        attempted=sent + by_status.get(DeliveryStatus.FAILED, 0),
        complaints=by_kind.get(ReportKind.COMPLAINT, 0),
        hard_bounces=by_kind.get(ReportKind.HARD_BOUNCE, 0),
        refusals=by_kind.get(ReportKind.REFUSAL, 0),
    )


def reported(session: Session, release_id: int) -> dict[ReportKind, int]:
    """Reports counted against the release (bounce_policy), by kind."""
    return reported_of(session, [release_id]).get(release_id, {})


def reported_of(session: Session, release_ids: Sequence[int]) -> dict[int, dict[ReportKind, int]]:
    """Reports counted against each of the releases, by kind; a release with none is left
    out."""
    counts: dict[int, dict[ReportKind, int]] = {}
    for release_id, kind, count in session.execute(
        select(BounceReport.release_id, BounceReport.kind, func.count())
        .where(BounceReport.release_id.in_(release_ids))
        .group_by(BounceReport.release_id, BounceReport.kind)
    ).all():
        counts.setdefault(release_id, {})[ReportKind(kind)] = count
    return counts


def tripped(
    figures_now: Figures, limits: Limits, *, waived: frozenset[str] = frozenset()
) -> Guard | None:
    """The guard these figures trip, if any and not `waived` (complaints, then hard bounces,
    then refusals)."""
    complaints = (
        figures_now.delivered >= MIN_DELIVERED
        and figures_now.complaints > limits.complaints * figures_now.delivered
    )
    if complaints and Guard.COMPLAINTS.value not in waived:
        return Guard.COMPLAINTS
    for guard, count in ((Guard.BOUNCES, figures_now.hard_bounces),
                         (Guard.REFUSALS, figures_now.refusals)):  # fmt: skip
        above = figures_now.attempted >= MIN_ATTEMPTED and count > limits.bounces * (
            figures_now.attempted
        )
        if above and guard.value not in waived:
            return guard
    return None


def reason(guard: Guard, figures_now: Figures, limits: Limits) -> str:
    """The pause reason the API shows (the desk words it in the reader's language)."""
    if guard is Guard.COMPLAINTS:
        return (
            f"Complaints: {figures_now.complaints} of {figures_now.delivered} delivered, "
            f"above the limit of {limits.complaints:.1%} (COMPLAINT_RATE_LIMIT)."
        )
    if guard is Guard.BOUNCES:
        return (
            f"Hard bounces: {figures_now.hard_bounces} of {figures_now.attempted} attempted, "
            f"above the limit of {limits.bounces:.1%} (BOUNCE_RATE_LIMIT)."
        )
    return (
        f"Refusals of the message: {figures_now.refusals} of {figures_now.attempted} "
        f"attempted, above the limit of {limits.bounces:.1%} (BOUNCE_RATE_LIMIT)."
    )


def check(
    session: Session, release_id: int, limits: Limits, *, now: datetime | None = None
) -> Guard | None:
    """Pause a sending release whose figures trip a guard it has not waived; the guard that
    paused it, or None (the caller commits). `now`: when (for the release.paused webhook)."""
    release = session.get(Release, release_id)
    if release is None or release.status is not ReleaseStatus.SENDING:
        return None
    now_figures = figures(session, release_id)
    guard = tripped(now_figures, limits, waived=frozenset(release.waived_guards))
    if guard is None:
        return None
    paused = session.execute(
        update(Release)
        .where(Release.id == release_id, Release.status == ReleaseStatus.SENDING)
        .values(
            status=ReleaseStatus.PAUSED,
            pause_reason=reason(guard, now_figures, limits),
            pause_guard=guard.value,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(release)
    if paused:
        webhook_outbox.release_changed(
            session, EventType.RELEASE_PAUSED, release, now=now or utcnow()
        )
    return guard if paused else None
