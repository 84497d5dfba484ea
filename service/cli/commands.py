"""Operator commands under `flask --app service ...` (CONTRACT §2).

    publisher create EMAIL [--name NAME] [--password-stdin]
    publisher password EMAIL [--password-stdin]
    token create EMAIL [--label TEXT]        prints only the token
    token list EMAIL
    token revoke EMAIL (--prefix PREFIX | --all)
    subscribers import FILE.csv [--confirmed] [--consent-note TEXT]
    subscribers export [FILE.csv]
    subscribers unbounce --since WHEN [--dry-run]
    subscribers invite [--dry-run]

Each command parses its arguments, calls the domain inside `session_scope()`, and prints.
A refusal is one line on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from service import dispatch
from service.app_state import session_scope, settings
from service.db import utcnow
from service.dispatch import TaskName
from service.domain import bounces, imports, invitations, publishers
from service.domain.addresses import display_address, normalize_address
from service.domain.errors import DomainError
from service.domain.imports import ImportOptions, ImportReport, Outcome, RowNote
from service.domain.releases import parse_datetime
from service.models import Publisher

publisher_group = AppGroup("publisher", help="Press staff accounts.")
token_group = AppGroup("token", help="API tokens of press staff (Authorization: Bearer ...).")
subscribers_group = AppGroup(
    "subscribers", help="Import and export subscribers as CSV; undo wrong bounces."
)

MAX_PUBLISHER_NAME = 200
MAX_TOKEN_LABEL = 100


def init_app(app: Flask) -> None:
    from service.cli.bounces import bounces_group
    from service.cli.deliverability import deliverability_group
    from service.cli.demo import demo_group
    from service.cli.digests import digests_group
    from service.cli.webhooks import webhooks_group

    for group in (
        publisher_group,
        token_group,
        subscribers_group,
        demo_group,
        bounces_group,
        deliverability_group,
        webhooks_group,
        digests_group,
    ):
        app.cli.add_command(group)


@contextmanager
def refusals() -> Iterator[None]:
    """A domain refusal becomes `Error: <message>` on stderr and exit status 1."""
    try:
        yield
    except DomainError as error:
        raise click.ClickException(error.text) from None


def _address(email: str) -> str:
    with refusals():
        return normalize_address(email)


def _require_publisher(publisher: Publisher | None, address: str) -> Publisher:
    if publisher is None:
        raise click.ClickException(
            f"There is no publisher with the address {display_address(address)}."
        )
    return publisher


# --- publisher ------------------------------------------------------------------------------


@publisher_group.command("create")
@click.argument("email")
@click.option("--name", help="The person's name, as shown on the desk.")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of asking.",
)
def create_publisher_command(email: str, name: str | None, password_stdin: bool) -> None:
    """Create a publisher account; asks for its password twice."""
    address = _address(email)
    name = " ".join(name.split()) if name else None
    if name and len(name) > MAX_PUBLISHER_NAME:
        raise click.ClickException(f"A name has at most {MAX_PUBLISHER_NAME} characters.")
    # Refuse an existing account before asking for a password that would be thrown away.
    with session_scope() as session:
        if publishers.find_publisher(session, address) is not None:
            raise click.ClickException(publishers.PublisherExists().text)
    password = _read_password(password_stdin)
    with refusals(), session_scope() as session:
        publishers.create_publisher(session, address, password, name=name, now=utcnow())
    click.echo(f"Created publisher {display_address(address)}.")


@publisher_group.command("password")
@click.argument("email")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of asking.",
)
def set_password_command(email: str, password_stdin: bool) -> None:
    """Give a publisher a new password; their desk sessions end."""
    address = _address(email)
    with session_scope() as session:
        _require_publisher(publishers.find_publisher(session, address), address)
    password = _read_password(password_stdin)
    with refusals(), session_scope() as session:
        publisher = _require_publisher(publishers.find_publisher(session, address), address)
        publishers.set_password(session, publisher, password)
    click.echo(f"New password set for {display_address(address)}.")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("No password on standard input.")
        return password
    return str(click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password"))


# --- token ----------------------------------------------------------------------------------


@token_group.command("create")
@click.argument("email")
@click.option("--label", help="What the token is for, e.g. 'CMS integration'.")
def create_token_command(email: str, label: str | None) -> None:
    """Issue a new API token and print it (only the token, on stdout). It is not shown again."""
    address = _address(email)
    label = " ".join(label.split()) if label else None
    if label and len(label) > MAX_TOKEN_LABEL:
        raise click.ClickException(f"A label has at most {MAX_TOKEN_LABEL} characters.")
    with refusals(), session_scope() as session:
        publisher = _require_publisher(publishers.find_publisher(session, address), address)
        if not publisher.is_active:
            click.echo(
                f"Warning: {display_address(address)} is deactivated; the token works once "
                "it is active.",
                err=True,
            )
        token = publishers.issue_token(session, publisher, label=label, now=utcnow())
    click.echo(token)


@token_group.command("list")
@click.argument("email")
def list_tokens_command(email: str) -> None:
    """List a publisher's tokens: prefix, label, created, last used, revoked."""
    address = _address(email)
    with session_scope() as session:
        publisher = _require_publisher(publishers.find_publisher(session, address), address)
        rows = [
            (
                token.prefix,
                token.label or "-",
                _when(token.created_at),
                _when(token.last_used_at),
                _when(token.revoked_at),
            )
            for token in sorted(publisher.tokens, key=lambda t: (t.created_at, t.id))
        ]
    if not rows:
        click.echo(f"{display_address(address)} has no tokens.", err=True)
        return
    header = ("PREFIX", "LABEL", "CREATED", "LAST USED", "REVOKED")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())


@token_group.command("revoke")
@click.argument("email")
@click.option("--prefix", help="The token's first characters, as `token list` shows them.")
@click.option("--all", "revoke_all", is_flag=True, help="Revoke every token of this publisher.")
def revoke_tokens_command(email: str, prefix: str | None, revoke_all: bool) -> None:
    """Revoke one token (--prefix) or all of them (--all); a revoked token is refused at once."""
    if bool(prefix) == revoke_all:
        raise click.UsageError("Give either --prefix PREFIX or --all.")
    address = _address(email)
    with refusals(), session_scope() as session:
        publisher = _require_publisher(publishers.find_publisher(session, address), address)
        count = publishers.revoke_tokens(session, publisher, prefix=prefix, now=utcnow())
    click.echo(f"Revoked {count} token{'' if count == 1 else 's'} of {display_address(address)}.")


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


# --- subscribers ----------------------------------------------------------------------------


@subscribers_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--confirmed",
    is_flag=True,
    help="Import as confirmed (they receive releases at once) instead of pending.",
)
@click.option(
    "--consent-note",
    metavar="TEXT",
    help="Where and how these readers consented; kept with each imported row.",
)
def import_command(file: Path, confirmed: bool, consent_note: str | None) -> None:
    """Import subscribers from a CSV file with a header row.

    Columns: email (required), language (nb or en; nb when empty), topics (separated by ;),
    frequency (immediately, daily or weekly; immediately when empty), name. Fields separated
    by , ; or a tab, quoted fields may hold line breaks (RFC 4180); UTF-8 with or without BOM,
    or UTF-16 with BOM (Excel's "Unicode text"). Bad rows are
    reported with the file's line numbers and skipped; addresses already present are left
    as they are; suppressed addresses are never added. No confirmation email is sent.
    """
    current = settings()
    with refusals():
        note = imports.check_consent_note(consent_note)
    if confirmed and not note:
        click.echo(
            "Note: --consent-note TEXT records where these readers consented; "
            "consider giving one with --confirmed.",
            err=True,
        )
    options = ImportOptions(
        consent_text_version=current.consent_text_version,
        confirmed=confirmed,
        consent_note=note,
        offered_topics=current.topics,
    )
    started = time.monotonic()
    total = ImportReport()
    with file.open("rb") as stream:
        with refusals():  # the desk's reader: the same encodings, separators and line numbers
            source = imports.open_csv(stream)
        if source.ignored_columns:
            click.echo(f"Ignored columns: {', '.join(source.ignored_columns)}", err=True)
        with session_scope() as session:
            for part in imports.import_batches(session, source, options, now=utcnow()):
                # One transaction per chunk: memory stays flat, the database is never locked
                # for long, and a rerun after an interruption finds the rows done as "exists".
                session.commit()
                for row_note in part.notes:
                    click.echo(_describe(row_note), err=True)
                total.add(part, keep_notes=False)
    elapsed = time.monotonic() - started
    summary = (
        f"imported {total.imported}, exists {total.exists}, suppressed {total.suppressed}, "
        f"rejected {total.rejected}"
    )
    if total.opted_out:
        summary += f", opted out {total.opted_out} (unsubscribed or bounced in the file)"
    if confirmed:
        summary += f" in {elapsed:.1f} s; imported readers are confirmed."
    else:
        summary += (
            f" in {elapsed:.1f} s; imported readers are pending and were sent no confirmation "
            "email: they receive nothing until they confirm. `flask subscribers invite` sends "
            "them the confirmation email."
        )
    click.echo(summary)


def _describe(note: RowNote) -> str:
    text = f"line {note.line}: {note.outcome.value}"
    if note.email:
        shown = display_address(note.email)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        text += f": {shown}"
    if note.reason and note.outcome is Outcome.REJECTED:
        text += f": {note.reason}"
    return text


@subscribers_group.command("export")
@click.argument(
    "file", required=False, type=click.Path(dir_okay=False, writable=True, path_type=Path)
)
def export_command(file: Path | None) -> None:
    """Write every subscriber as CSV (UTF-8, comma-separated) to FILE, or to stdout.

    Columns: email, name, status, language, topics, frequency, created_at, confirmed_at,
    unsubscribed_at, consent_source. `subscribers import` reads it back.
    """
    with session_scope() as session:
        if file is not None:
            with file.open("w", encoding="utf-8", newline="") as out:
                count = imports.write_csv(imports.export_rows(session), out)
            click.echo(f"Exported {count} subscribers to {file}.", err=True)
            return
        out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="", write_through=True)
        try:
            imports.write_csv(imports.export_rows(session), out)
        finally:
            out.flush()
            out.detach()


@subscribers_group.command("unbounce")
@click.option(
    "--since",
    "since_text",
    required=True,
    metavar="WHEN",
    help="ISO 8601 date and time with a time zone, e.g. 2026-11-30T08:00:00+01:00.",
)
@click.option("--dry-run", is_flag=True, help="Only count the readers it would restore.")
def unbounce_command(since_text: str, dry_run: bool) -> None:
    """Confirm again the readers marked bounced since WHEN, and lift their suppression.

    For a relay that refused everyone in a way that was taken for the readers' fault. Their
    bounce scores go back to 0; unsubscribed and erased readers are not touched.
    """
    with refusals():
        since = parse_datetime(since_text, "--since")
    assert since is not None
    with session_scope() as session:
        count = bounces.unbounce(session, since=since, now=utcnow(), dry_run=dry_run)
    if dry_run:
        click.echo(f"{count} readers marked bounced since {since.isoformat()} would be restored.")
    else:
        click.echo(f"Restored {count} readers marked bounced since {since.isoformat()}.")


@subscribers_group.command("invite")
@click.option("--dry-run", is_flag=True, help="Only count the readers it would invite.")
def invite_command(dry_run: bool) -> None:
    """Send imported readers who are still pending the confirmation email a signup gets.

    Each in their own language; at most once per address in CONFIRM_TTL (7 days), however
    often this runs; unsubscribed, bounced and suppressed readers never. The workers send
    the emails at SEND_RATE, as they send releases (the desk's subscribers page has the
    same button).
    """
    days = invitations.INVITE_INTERVAL.days
    now = utcnow()
    with session_scope() as session:
        if dry_run:
            count = invitations.count_invitable(session, now=now)
            click.echo(
                f"{count} imported readers waiting for confirmation would be sent the "
                "confirmation email."
            )
            return
        count = invitations.invite(session, now=now)
    if not count:
        click.echo(
            "Nobody was invited: no imported reader is waiting for confirmation who was not "
            f"invited in the last {days} days."
        )
        return
    if not dispatch.ring(TaskName.SEND_INVITATIONS):
        click.echo(
            "The task queue (Redis) cannot be reached: the sweep starts the sending once it "
            "is back.",
            err=True,
        )
    again = (now + invitations.INVITE_INTERVAL).strftime("%Y-%m-%d %H:%M UTC")
    click.echo(
        f"Invited {count} imported readers: the workers send each the confirmation email, at "
        f"SEND_RATE. They can be invited again from {again}."
    )
