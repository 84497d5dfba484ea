"""`flask --app service bounces ...`: the doors for report mails (CONTRACT §9).

bounces serve [--host 127.0.0.1] [--port 2525]   the bounce server, until stopped
bounces read FILE.eml|-                          one report mail, from a file or stdin
"""

from __future__ import annotations

import signal
import threading

import click
from flask import current_app
from flask.cli import AppGroup

from service import dispatch
from service.app_state import session_scope, settings
from service.bounce_server import BounceHandler, controller
from service.db import utcnow
from service.domain import bounce_intake, incoming_reports, send_guards
from service.domain.bounce_policy import Taken
from service.domain.report_mail import MAX_REPORT_BYTES
from service.models import ReportDoor
from service.sending.envelope import EnvelopeSenders
from service.task_names import TaskName

bounces_group = AppGroup(
    "bounces", help="Bounces and complaints: the bounce server, and reading a report mail."
)

DESCRIBED = {
    "suppressed": "the reader is marked bounced and suppressed",
    "scored": "a soft bounce: the reader's bounce score went up",
    "unsubscribed": "a complaint: the reader is unsubscribed and suppressed",
    "counted": "counted against the release, not the reader",
    "unchanged": "the reader was already off the list: nothing changed",
}


@bounces_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=2525, show_default=True, type=click.IntRange(1, 65535), help="SMTP port."
)
def serve_command(host: str, port: int) -> None:
    """Take bounces and complaints by SMTP for BOUNCE_ADDRESS and its VERP addresses.

    Point the bounce domain's MX here (port 25 in front of it). Each mail is stored and a
    worker reads it; mail for any other address is refused.
    """
    envelope = EnvelopeSenders.from_settings(settings())
    if envelope.verp is None:
        raise click.ClickException(
            "BOUNCE_ADDRESS is not set: the bounce server takes mail only for it "
            "(e.g. BOUNCE_ADDRESS=bounces@press.example)."
        )
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def store(data: bytes, recipients: list[str]) -> int:
        with app.app_context(), session_scope() as session:
            return incoming_reports.store(
                session, data[:MAX_REPORT_BYTES], recipients, now=utcnow()
            )

    def ring(report_id: int) -> bool:
        with app.app_context():
            return dispatch.ring(TaskName.TAKE_REPORT, report_id)

    handler = BounceHandler(envelope.verp.accepts, store, ring)
    server = controller(handler, host=host, port=port)
    try:
        server.start()
    except (OSError, RuntimeError) as error:
        raise click.ClickException(f"Cannot listen on {host}:{port}: {error}") from None
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    click.echo(f"Taking bounces for {settings().bounce_address} on {host}:{port}.")
    try:
        stop.wait()
    finally:
        server.stop()
        handler.close()


@bounces_group.command("read")
@click.argument("file", type=click.File("rb"))
def read_command(file: click.utils.LazyFile) -> None:
    """Read one report mail (a bounce or a complaint, as .eml; - for stdin) and apply it."""
    data = file.read(MAX_REPORT_BYTES + 1)
    if not data:
        raise click.ClickException("The file is empty: give one mail, as saved from a mailbox.")
    config = settings()
    limits = send_guards.Limits.from_settings(config)
    with session_scope() as session:
        taken = bounce_intake.take_mail(
            session,
            data[:MAX_REPORT_BYTES],
            door=ReportDoor.FILE,
            verp=EnvelopeSenders.from_settings(config).verp,
            now=utcnow(),
        )
        incoming_reports.guard_releases(session, taken, limits)
    if not taken:
        click.echo("Nothing to do: the mail reports no failed delivery (or is an auto-reply).")
    for one in taken:
        click.echo(_describe(one))


def _describe(taken: Taken) -> str:
    if taken.kind is None:
        return "Ignored: the report names no reader on file."
    kind = taken.kind.value.replace("_", " ")
    release = f" (release {taken.release_id})" if taken.release_id else ""
    if taken.repeat:
        return f"{kind.capitalize()}{release}: taken before, nothing changed."
    what = DESCRIBED[taken.outcome.value] if taken.outcome else "nothing changed"
    return f"{kind.capitalize()}{release}: {what}."
