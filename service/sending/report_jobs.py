"""The way back, as a worker runs it: a report mail the bounce server stored goes through the
policy (domain.incoming_reports), and the sweep rings again for any whose ring was lost."""

from __future__ import annotations

import logging
from datetime import datetime

from service.domain import incoming_reports, send_guards
from service.sending import meters
from service.sending.outbox import Outbox
from service.task_names import TaskName

log = logging.getLogger(__name__)


def take_report(box: Outbox, report_id: int) -> dict[str, int]:
    """Counts of the reports in the mail, by outcome ("ignored": naming nobody on file,
    "repeat": taken before)."""
    with box.open_session() as session:
        taken = incoming_reports.take(
            session,
            report_id,
            verp=box.envelope.verp,
            limits=send_guards.Limits.from_settings(box.settings),
            now=box.now(),
        )
    meters.count_reports(taken)
    counts: dict[str, int] = {}
    for one in taken:
        name = "repeat" if one.repeat else "ignored" if one.outcome is None else one.outcome
        counts[str(name)] = counts.get(str(name), 0) + 1
    return counts


def ring_waiting_reports(box: Outbox, now: datetime) -> int:
    with box.open_session() as session:
        dropped = incoming_reports.give_up(session, now=now)
        waiting = incoming_reports.waiting(session, now=now)
    if dropped:
        log.error("%s report mails no worker could take in two days were deleted", dropped)
    for report_id in waiting:
        box.ring(TaskName.TAKE_REPORT, report_id)
    return len(waiting)
