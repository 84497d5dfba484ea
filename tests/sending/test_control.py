"""What each change of a release owes, said once (sending.control) for the API, the desk, the
sweep and the CLI: the tasks come back to be rung after the commit, never before."""

from __future__ import annotations

from sqlalchemy import select

from service.db import Database, utcnow
from service.models import Release, ReleaseStatus
from service.sending import control
from service.sending.control import FollowUp
from service.task_names import TaskName
from tests.sending.parts import add_release

CHAINS = 3  # SEND_CHAINS as a deployment sets it


def status_of(db: Database, release_id: int) -> ReleaseStatus:
    with db.session_scope() as session:
        status = session.scalar(select(Release.status).where(Release.id == release_id))
        assert status is not None
        return status


def test_publishing_an_emailed_release_owes_its_start_once(db: Database) -> None:
    release_id = add_release(db, status=ReleaseStatus.DRAFT)
    with db.session_scope() as session:
        _, first = control.publish(session, release_id, now=utcnow())
    with db.session_scope() as session:
        _, again = control.publish(session, release_id, now=utcnow())
    assert first.tasks == [(TaskName.START_RELEASE, release_id)]
    assert again.tasks == []  # a double click starts one send
    assert status_of(db, release_id) is ReleaseStatus.SENDING


def test_a_resume_owes_planning_and_every_chain_and_a_pause_owes_nothing(db: Database) -> None:
    release_id = add_release(db)
    with db.session_scope() as session:
        _, paused = control.change(session, release_id, "pause", now=utcnow(), chains=CHAINS)
    with db.session_scope() as session:
        _, resumed = control.change(session, release_id, "resume", now=utcnow(), chains=CHAINS)
    with db.session_scope() as session:
        _, again = control.change(session, release_id, "resume", now=utcnow(), chains=CHAINS)
    assert paused.tasks == []
    assert (
        resumed.tasks
        == [(TaskName.START_RELEASE, release_id)] + [(TaskName.SEND_BATCH, release_id)] * CHAINS
    )
    assert again.tasks == []  # already sending: its chains are running


def test_a_restart_takes_no_more_chains_than_there_is_work_for() -> None:
    assert len(control.sending_chains(7, CHAINS, owed_batches=1).tasks) == 1
    assert len(control.sending_chains(7, CHAINS, owed_batches=100).tasks) == CHAINS
    assert len(control.sending_chains(7, CHAINS).tasks) == CHAINS


def test_ringing_stops_at_the_first_task_the_broker_does_not_take() -> None:
    rung: list[tuple[TaskName, int | str]] = []

    def ring(task: TaskName, *args: int | str) -> bool:
        rung.append((task, args[0]))
        return len(rung) < 2

    owed = FollowUp([(TaskName.START_RELEASE, 1), (TaskName.SEND_BATCH, 1)])
    owed.tasks.append((TaskName.SEND_BATCH, 1))
    owed.ring(ring)
    assert rung == [(TaskName.START_RELEASE, 1), (TaskName.SEND_BATCH, 1)]
