"""`flask --app service digests send [--frequency daily|weekly]` (CONTRACT §9): digests now.

Without --frequency it does what the sweep does at DIGEST_HOUR (weekly on DIGEST_WEEKDAY):
it opens the digest runs due by now (by DIGEST_CLOCK_FILE's time when that is set) that are
not open yet. With --frequency it opens a run of that frequency at once, listing everything
held for its readers so far, whatever the schedule says. Either way it plans the run's
readers here and hands the sending to the workers. For operators, and for tests that must
not wait for the clock.
"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from service import dispatch
from service.app_state import session_scope, settings
from service.cli.commands import refusals
from service.db import utcnow
from service.domain import digests
from service.models import Frequency
from service.sending import control
from service.sending.sweep import digest_schedule

digests_group = AppGroup("digests", help="Daily and weekly digests of releases.")


@digests_group.command("send")
@click.option(
    "--frequency",
    type=click.Choice([f.value for f in digests.DIGEST_FREQUENCIES]),
    help="Send this frequency's digests now, due or not (by default: those due by the schedule).",
)
def send_command(frequency: str | None) -> None:
    """Build the digests owed now and hand them to the workers to send."""
    config = settings()
    now = utcnow()
    with refusals(), session_scope() as session:
        if frequency:
            opened = digests.open_runs_now(session, (Frequency(frequency),), now=now)
            runs = [run_id for run_id in opened.values() if run_id is not None]
        else:
            clock = (
                digests.read_clock(config.digest_clock_file) if config.digest_clock_file else now
            )
            runs = digests.open_due_runs(session, digest_schedule(config), now=clock, opened_at=now)
    if not runs:
        click.echo(
            "No digest is owed now: nothing new for anyone, or the due digests are out "
            "already. --frequency daily (or weekly) sends one now regardless."
        )
        return
    for run_id in runs:
        readers = control.start_release(  # plans here; the workers send
            session_scope,
            run_id,
            ring=dispatch.ring,
            stop_requested=lambda: False,
            now=utcnow,
            chains=config.send_chains,
        )
        click.echo(f"Digest run {run_id}: {readers} readers, handed to the workers.")
