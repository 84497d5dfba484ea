"""Publish, pause, resume and cancel, as the API and the desk both do them: the state change in
the request's transaction, then (after the commit) the tasks that carry it out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session

from service import dispatch
from service.dispatch import TaskName
from service.domain import releases
from service.models import Release, ReleaseStatus

Action = Literal["publish", "pause", "resume", "cancel"]
ACTIONS: tuple[Action, ...] = ("publish", "pause", "resume", "cancel")
SEND_CHAINS = 4  # as workers.tasks.SEND_CHAINS: the web never imports workers


@dataclass
class FollowUp:
    """Tasks to enqueue once the transaction that changed the release has committed."""

    tasks: list[tuple[TaskName, int]] = field(default_factory=list)

    def ring(self) -> None:
        """Never raises for a broker outage: the committed state is the truth, and the sweep
        starts what these tasks would have (a `sending` release that nobody planned within
        REPLAN_AFTER, or whose rows no live lease holds), so the answer stays a 2xx."""
        for task, release_id in self.tasks:
            if not dispatch.ring(task, release_id):
                return


def change(
    session: Session, release_id: int, action: Action, *, now: datetime
) -> tuple[Release, FollowUp]:
    follow_up = FollowUp()
    if action == "publish":
        release, must_send = releases.publish(session, release_id, now=now)
        if must_send:
            follow_up.tasks.append((TaskName.START_RELEASE, release_id))
    elif action == "pause":
        release = releases.pause(session, release_id)
    elif action == "resume":
        was_paused = releases.get_release(session, release_id).status is ReleaseStatus.PAUSED
        release = releases.resume(session, release_id)
        if was_paused:
            # Planning picks up at its checkpoint; sending at the rows still owed. Never from 0.
            follow_up.tasks.append((TaskName.START_RELEASE, release_id))
            follow_up.tasks += [(TaskName.SEND_BATCH, release_id)] * SEND_CHAINS
    else:
        release = releases.cancel(session, release_id, now=now)
    return release, follow_up
