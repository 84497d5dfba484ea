"""The backstop, every SWEEP_SECONDS: recover vanished workers' rows, restart lost or stalled
sends, start due schedules, mark finished sends sent, and ring what the doors could not (owed
notices, waiting invitations, report mails the bounce server stored). Makes a Redis wipe a
delay, never a loss (DESIGN.md)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from service.config import Settings
from service.domain import (
    digests,
    invitations,
    owed_notices,
    releases,
    webhook_outbox,
)
from service.domain.tokens import UNDO_TTL
from service.models import OwedNotice, ReleaseStatus
from service.sending import control, ledger, meters, report_jobs
from service.sending.batch import BATCH_SIZE
from service.sending.invitations import INVITATIONS_LOCK
from service.sending.journal import journal_key
from service.sending.outbox import Outbox
from service.task_names import TaskName

log = logging.getLogger(__name__)
REPLAN_AFTER = timedelta(minutes=1)
NOTICE_TASKS = {
    OwedNotice.CONFIRMATION: TaskName.SEND_CONFIRMATION,
    OwedNotice.ALREADY_SUBSCRIBED: TaskName.SEND_ALREADY_SUBSCRIBED,
    OwedNotice.WELCOME: TaskName.SEND_WELCOME,
}


def sweep(box: Outbox) -> dict[str, int]:
    """Counts of what it did: reclaimed, cancelled, restarted, scheduled, finished, notices,
    invitations, reports (report mails rung again), webhooks (outgoing webhook events rung),
    digests (digest runs opened), settled (rows listed in digests that took their outcome)."""
    now = box.now()
    report = {
        "reclaimed": 0,
        "cancelled": 0,
        "restarted": 0,
        "scheduled": 0,
        "finished": 0,
        "notices": 0,
    }
    report["reclaimed"], report["cancelled"] = recover_leases(box, now)
    meters.SWEEPS.inc()
    meters.LEASES_EXPIRED.inc(report["reclaimed"])
    with box.open_session() as session:
        due = ledger.due_scheduled(session, now=now)
    for release_id in due:
        try:
            with box.open_session() as session:
                _, follow_up = control.publish(session, release_id, now=now)
        except releases.Embargoed:
            # A schedule before the embargo's end is refused when it is set; a row written
            # by other means waits, still scheduled, until a sweep after the embargo.
            log.warning("release %s: scheduled, but under embargo; not published yet", release_id)
            continue
        if follow_up.tasks:
            follow_up.ring(box.ring)
            report["scheduled"] += 1
    with box.open_session() as session:
        for release in ledger.releases_in(session, ReleaseStatus.SENDING):
            if release.planned_at is None:
                if release.send_started_at and now - release.send_started_at > REPLAN_AFTER:
                    box.ring(TaskName.START_RELEASE, release.id)  # resumes at its checkpoint
                continue
            if ledger.finish_if_done(session, release, now=now):
                report["finished"] += 1
            elif not ledger.in_progress(session, release.id, now=now):
                waiting = ledger.due_count(session, release.id, now=now)
                if waiting:
                    chains = control.sending_chains(
                        release.id, box.settings.send_chains, owed_batches=-(-waiting // BATCH_SIZE)
                    )
                    chains.ring(box.ring)
                    report["restarted"] += 1
    report["notices"] = ring_owed_notices(box, now)
    report["invitations"] = ring_waiting_invitations(box, now)
    report["reports"] = report_jobs.ring_waiting_reports(box, now)
    report["webhooks"] = ring_due_webhooks(box, now)
    report["digests"] = open_due_digests(box, now)
    with box.open_session() as session:
        for run_id in digests.unsettled_runs(session):
            report["settled"] = report.get("settled", 0) + digests.settle(session, run_id)
    return report


def digest_schedule(settings: Settings) -> digests.DigestSchedule:
    return digests.DigestSchedule(settings.digest_hour, settings.digest_weekday, settings.zone)


def open_due_digests(box: Outbox, now: datetime) -> int:
    """Digest runs due by now (or by DIGEST_CLOCK_FILE's time) and not yet open: opened and
    started. A run opened but never started is started by the sweep's look at sending
    releases (planned_at still None after REPLAN_AFTER). Returns runs opened."""
    clock = box.settings.digest_clock_file
    try:
        digest_now = digests.read_clock(clock) if clock else now
    except digests.ClockFileUnreadable as error:
        log.error("no digests opened: %s", error)
        return 0
    with box.open_session() as session:
        opened = digests.open_due_runs(
            session, digest_schedule(box.settings), now=digest_now, opened_at=now
        )
        if opened:  # once a digest time, not at every sweep: it reads every reader gone
            digests.skip_for_readers_gone(session, now=now, after=UNDO_TTL)
    for run_id in opened:
        log.info("digest run %s opened", run_id)
        box.ring(TaskName.START_RELEASE, run_id)
    return len(opened)


def recover_leases(box: Outbox, now: datetime) -> tuple[int, int]:
    """Rows whose lease expired: those in their owner's journal are sent, the rest owed again;
    rows still owed by cancelled releases are cancelled. Returns (reclaimed, cancelled)."""
    with box.open_session() as session:
        expired = ledger.expired_leases(session, now=now)
        by_owner: dict[str, list[int]] = {}
        for lease in expired:
            by_owner.setdefault(lease.owner, []).append(lease.delivery_id)
        journaled: set[int] = set()
        for owner, ids in by_owner.items():
            flags = box.redis.smismember(journal_key(owner), ids)
            journaled.update(d for d, flag in zip(ids, flags, strict=True) if flag)
        ledger.reclaim(session, journaled, [lease.delivery_id for lease in expired], now=now)
        cancelled = ledger.cancel_leftovers(session)
    # Committed: the database now holds what the journals knew of these rows. Only these:
    # a sweep may see part of a batch, and the rest still needs its journal.
    for owner, ids in by_owner.items():
        box.redis.srem(journal_key(owner), *ids)
    return len(expired), cancelled


def ring_owed_notices(box: Outbox, now: datetime) -> int:
    """Notices recorded as owed whose ring after the commit failed (or never came): queue
    them now, and settle each record once the queue has it."""
    with box.open_session() as session:
        owed = owed_notices.unrung(session, now=now)
    for notice in owed:
        box.ring(NOTICE_TASKS[notice.notice], notice.subscriber_uid)
        with box.open_session() as session:
            owed_notices.settle(session, notice)
    return len(owed)


def ring_waiting_invitations(box: Outbox, now: datetime) -> int:
    """Invitations of a round older than RING_AFTER still waiting, and no run sending them
    (its ring failed, or it stopped): start one. 1 when it did."""
    if box.redis.exists(INVITATIONS_LOCK):
        return 0
    with box.open_session() as session:
        waiting = invitations.waiting_since(session, now - owed_notices.RING_AFTER)
    if waiting:
        box.ring(TaskName.SEND_INVITATIONS)
    return int(waiting)


def ring_due_webhooks(box: Outbox, now: datetime) -> int:
    """Outgoing webhook events due and first in their line (a ring after a commit that was
    lost, a retry whose countdown was): ring them; and drop those kept long enough."""
    with box.open_session() as session:
        webhook_outbox.prune(session, now=now)
        due = webhook_outbox.due(session, now=now)
    for row_id in due:
        box.ring(TaskName.DELIVER_WEBHOOK, row_id)
    return len(due)
