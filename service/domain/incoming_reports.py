"""Report mails on their way from the bounce server to the policy.

The bounce server only stores what it is given (`store`) and rings a worker: a burst of
bounces never waits on parsing or on the policy, and a report is never lost between the two
(the database holds it; Redis only rings, and the sweep rings again for any left waiting).
A worker then reads it and applies the policy in one transaction (`take`), which deletes it:
a report mail holds addresses and is kept no longer than that.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from service.domain import bounce_intake, send_guards
from service.domain.bounce_policy import Taken
from service.domain.verp import VerpAddresses
from service.models import IncomingReport, ReportDoor

log = logging.getLogger(__name__)

WAITING_TOO_LONG = timedelta(minutes=2)  # unread this long: its ring was lost
GIVEN_UP_AFTER = timedelta(days=2)  # a mail no worker could take this long is deleted


def store(session: Session, data: bytes, recipients: Iterable[str], *, now: datetime) -> int:
    row = IncomingReport(
        door=ReportDoor.SMTP,
        message=data,
        recipients="\n".join(r.strip() for r in recipients)[:4000],
        received_at=now,
    )
    session.add(row)
    session.flush()
    return row.id


def take(
    session: Session,
    report_id: int,
    *,
    verp: VerpAddresses | None,
    limits: send_guards.Limits,
    now: datetime,
) -> list[Taken]:
    """Apply a stored report mail and delete it; [] when it is gone (taken already)."""
    row = session.get(IncomingReport, report_id, with_for_update=True)
    if row is None:
        return []
    taken = bounce_intake.take_mail(
        session,
        row.message,
        door=row.door,
        verp=verp,
        now=now,
        envelope_recipients=[r for r in row.recipients.splitlines() if r],
    )
    session.delete(row)
    guard_releases(session, taken, limits)
    return taken


def guard_releases(session: Session, taken: Iterable[Taken], limits: send_guards.Limits) -> None:
    """After reports counted against releases: the send guards of each (send_guards)."""
    for release_id in {t.release_id for t in taken if t.release_id and t.outcome}:
        guard = send_guards.check(session, release_id, limits)
        if guard is not None:
            log.warning("release %s paused by the %s guard", release_id, guard.value)


def give_up(session: Session, *, now: datetime) -> int:
    """Delete report mails that no worker could take in GIVEN_UP_AFTER (each failure is in
    the worker's log): they hold addresses, and must not block the ones behind them."""
    return (
        session.execute(
            delete(IncomingReport).where(IncomingReport.received_at <= now - GIVEN_UP_AFTER)
        ).rowcount
        or 0
    )


def waiting(session: Session, *, now: datetime, limit: int = 500) -> list[int]:
    """Reports left unread too long: the sweep rings for them again."""
    return list(
        session.scalars(
            select(IncomingReport.id)
            .where(IncomingReport.received_at <= now - WAITING_TOO_LONG)
            .order_by(IncomingReport.id)
            .limit(limit)
        )
    )
