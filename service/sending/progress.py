"""How a send stands: who a release would reach now, and how far its delivery has come."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.domain import send_guards
from service.domain.releases import delivery_counts
from service.models import Release, ReleaseStatus, ReportKind, Subscriber
from service.sending.ledger import deferred_count, recipient_filter

ACTIVE_STATES = (ReleaseStatus.SENDING, ReleaseStatus.PAUSED)


def audience(session: Session, release: Release) -> dict[str, int]:
    """Confirmed readers the release would go to if sent now, by the language they would get."""
    conditions, language = recipient_filter(release)
    readers = select(language.label("language")).select_from(Subscriber).where(*conditions)
    by_language = readers.subquery()
    rows = session.execute(
        select(by_language.c.language, func.count()).group_by(by_language.c.language)
    ).all()
    return {str(code): int(count) for code, count in rows}


@dataclass(frozen=True)
class SendProgress:
    state: str
    total: int
    sent: int
    failed: int
    pending: int  # owed: waiting, in a worker's hands, or deferred
    deferred: int  # of those, waiting for a retry after a temporary refusal
    skipped: int  # readers who left before their copy went out
    cancelled: int
    planning: bool  # recipients are still being listed: total will grow
    percent: float  # of the listed rows, those done (sent, failed or skipped)
    rate: float | None  # messages a second, on average since the send started
    eta_seconds: int | None
    pause_reason: str | None
    pause_guard: str | None  # send_guards.Guard that paused it, while one has
    at_once: int  # sent in the release's own email
    in_digests: int  # daily and weekly readers: in a digest rather than at once
    digest_waiting: int  # of those, whose digest has not gone out yet (never in total)
    bounced: int  # hard bounces: refused during the send or reported after it
    complained: int  # complaints (feedback loops, provider events)
    started_at: str | None
    finished_at: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def send_progress(session: Session, release: Release, *, now: datetime) -> SendProgress:
    counts = delivery_counts(session, release.id)
    reports = send_guards.reported(session, release.id)
    done = counts["sent"] + counts["failed"] + counts["skipped"]
    total = counts["total"]
    rate = eta = None
    if release.send_started_at is not None and counts["sent"]:
        until = release.send_finished_at or now
        elapsed = (until - release.send_started_at).total_seconds()
        if elapsed > 0:
            rate = counts["sent"] / elapsed
            if release.status is ReleaseStatus.SENDING and counts["pending"]:
                eta = round(counts["pending"] / rate)
    return SendProgress(
        state=release.status.value,
        total=total,
        sent=counts["sent"],
        failed=counts["failed"],
        pending=counts["pending"],
        deferred=deferred_count(session, release.id, now=now) if counts["pending"] else 0,
        skipped=counts["skipped"],
        cancelled=counts["cancelled"],
        planning=release.status in ACTIVE_STATES and release.planned_at is None,
        percent=round(100 * done / total, 1) if total else 0.0,
        rate=round(rate, 1) if rate is not None else None,
        eta_seconds=eta,
        pause_reason=release.pause_reason,
        pause_guard=release.pause_guard if release.status is ReleaseStatus.PAUSED else None,
        at_once=counts["at_once"],
        in_digests=counts["in_digests"],
        digest_waiting=counts["held"],
        bounced=reports.get(ReportKind.HARD_BOUNCE, 0),
        complained=reports.get(ReportKind.COMPLAINT, 0),
        started_at=release.send_started_at.isoformat() if release.send_started_at else None,
        finished_at=release.send_finished_at.isoformat() if release.send_finished_at else None,
    )
