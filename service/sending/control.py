"""Publish, pause, resume and cancel, and the tasks each one owes: the one place that says so.

The API, the desk, the sweep and the CLI all change a release here. The state change happens in
the caller's transaction; the tasks it owes come back as a `FollowUp`, rung by the caller once
that transaction has committed (a task must never see work that is not there yet).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from sqlalchemy.orm import Session

from service.domain import releases
from service.models import Release, ReleaseStatus
from service.sending import ledger
from service.sending.ledger import SessionFactory
from service.task_names import TaskName

log = logging.getLogger(__name__)

Action = Literal["publish", "pause", "resume", "cancel"]
ACTIONS: tuple[Action, ...] = ("publish", "pause", "resume", "cancel")


class Ring(Protocol):
    """Enqueue a task by name; False when the broker cannot be reached (never raises for
    that: the committed state is the truth, and the sweep carries out what was not rung)."""

    def __call__(self, task: TaskName, *args: int | str) -> bool: ...


@dataclass
class FollowUp:
    """Tasks to enqueue once the transaction that changed the release has committed."""

    tasks: list[tuple[TaskName, int]] = field(default_factory=list)

    def ring(self, ring: Ring) -> None:
        """Rings each task in turn, and stops at the first the broker does not take: the
        sweep starts what these tasks would have (a `sending` release that nobody planned
        within sweep.REPLAN_AFTER, or whose rows no live lease holds)."""
        for task, release_id in self.tasks:
            if not ring(task, release_id):
                return


def publish(session: Session, release_id: int, *, now: datetime) -> tuple[Release, FollowUp]:
    """Publish now (idempotent, releases.publish); a send that must start owes START_RELEASE."""
    release, must_send = releases.publish(session, release_id, now=now)
    follow_up = FollowUp()
    if must_send:
        follow_up.tasks.append((TaskName.START_RELEASE, release_id))
    return release, follow_up


def change(
    session: Session, release_id: int, action: Action, *, now: datetime, chains: int
) -> tuple[Release, FollowUp]:
    """`chains` is SEND_CHAINS (a resume restarts that many). Raises what
    releases.publish/pause/resume/cancel raise (NotFound, InvalidState)."""
    if action == "publish":
        return publish(session, release_id, now=now)
    follow_up = FollowUp()
    if action == "pause":
        release = releases.pause(session, release_id, now=now)
    elif action == "resume":
        was_paused = releases.get_release(session, release_id).status is ReleaseStatus.PAUSED
        release = releases.resume(session, release_id)
        if was_paused:
            # Planning picks up at its checkpoint; sending at the rows still owed. Never from 0.
            follow_up.tasks.append((TaskName.START_RELEASE, release_id))
            follow_up.tasks += sending_chains(release_id, chains).tasks
    else:
        release = releases.cancel(session, release_id, now=now)
    return release, follow_up


def sending_chains(release_id: int, chains: int, *, owed_batches: int | None = None) -> FollowUp:
    """The send_batch chains that carry a send: each claims a batch, sends it and rings the
    next. `chains` is SEND_CHAINS; fewer when fewer batches are owed (`owed_batches`)."""
    count = chains if owed_batches is None else min(chains, owed_batches)
    return FollowUp([(TaskName.SEND_BATCH, release_id)] * count)


def start_release(
    open_session: SessionFactory,
    release_id: int,
    *,
    ring: Ring,
    stop_requested: Callable[[], bool],
    now: Callable[[], datetime],
    chains: int,
) -> int:
    """START_RELEASE's work: plan the recipients chunk by chunk (ledger.plan_chunk, each in a
    transaction of its own), starting the chains as soon as there is work. Returns the rows
    planned. Asked to stop, it rings itself again: another worker resumes at the checkpoint."""
    planned = 0
    started = False
    while True:
        if stop_requested():
            ring(TaskName.START_RELEASE, release_id)
            return planned
        with open_session() as session:
            release = session.get(Release, release_id)
            if release is None or release.status not in (
                ReleaseStatus.SENDING,
                ReleaseStatus.PAUSED,
            ):
                return planned
            if release.planned_at is not None:
                ledger.finish_if_done(session, release, now=now())
                break
            planned += ledger.plan_chunk(session, release, now=now())
            sending = release.status is ReleaseStatus.SENDING
        if planned and sending and not started:
            sending_chains(release_id, chains).ring(ring)
            started = True
    log.info("release %s: planned %s deliveries", release_id, planned)
    return planned


def after_batch(
    open_session: SessionFactory, release_id: int, *, more: bool, ring: Ring, now: datetime
) -> None:
    """What a send_batch owes when it ends: with `more` to do, the next link of its chain
    (another worker takes up rows given back at a shutdown); else, being possibly the last
    chain to find nothing left, it closes the send once no row is owed."""
    if more:
        ring(TaskName.SEND_BATCH, release_id)
        return
    with open_session() as session:
        release = session.get(Release, release_id)
        if release is not None:
            ledger.finish_if_done(session, release, now=now)
