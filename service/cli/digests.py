"""`flask --app service digests send [--frequency daily|weekly]` (CONTRACT §9): digests now.

Opens a digest run of each frequency asked for (both by default) that lists everything held
for its readers so far, plans its readers here and hands the sending to the workers, as the
schedule (DIGEST_HOUR, DIGEST_WEEKDAY) does by itself. For operators, and for tests that must
not wait for the clock.
"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from service import dispatch
from service.app_state import session_scope, settings
from service.db import utcnow
from service.domain import digests
from service.models import Frequency
from service.sending import control

digests_group = AppGroup("digests", help="Daily and weekly digests of releases.")


@digests_group.command("send")
@click.option(
    "--frequency",
    type=click.Choice([f.value for f in digests.DIGEST_FREQUENCIES]),
    help="Only this frequency's digests (by default daily and weekly).",
)
def send_command(frequency: str | None) -> None:
    """Build the digests owed now and hand them to the workers to send."""
    wanted = (Frequency(frequency),) if frequency else digests.DIGEST_FREQUENCIES
    with session_scope() as session:
        opened = digests.open_runs_now(session, wanted, now=utcnow())
    for kind, run_id in opened.items():
        if run_id is None:
            click.echo(f"{kind.value}: nothing new for anyone; no digest sent.")
            continue
        readers = control.start_release(  # plans here; the workers send
            session_scope,
            run_id,
            ring=dispatch.ring,
            stop_requested=lambda: False,
            now=utcnow,
            chains=settings().send_chains,
        )
        click.echo(
            f"{kind.value}: digest run {run_id} for {readers} readers, handed to the workers."
        )
