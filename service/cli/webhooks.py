"""`flask --app service webhooks ...`: the endpoints outgoing webhooks go to (CONTRACT §9).

webhooks add URL --events a,b [--include-address]   prints the id and the secret (once)
webhooks list                                       id, events, address or not, URL, counts
webhooks remove ID                                  the endpoint and the events it is owed
"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from service.app_state import session_scope, settings
from service.cli.commands import refusals
from service.db import utcnow
from service.domain import webhook_endpoints, webhook_outbox

webhooks_group = AppGroup("webhooks", help="Outgoing webhooks: signed events for your own systems.")


@webhooks_group.command("add")
@click.argument("url")
@click.option(
    "--events",
    required=True,
    help="Comma-separated: " + ", ".join(webhook_endpoints.EVENT_TYPES) + ".",
)
@click.option(
    "--include-address",
    is_flag=True,
    help="Subscriber events carry the reader's address too (by default only their uid).",
)
def add_command(url: str, events: str, include_address: bool) -> None:
    """Register URL for the events named; prints its id and its signing secret, once."""
    with refusals(), session_scope() as session:
        added = webhook_endpoints.add(
            session,
            url,
            events.split(","),
            include_address=include_address,
            now=utcnow(),
            allow_private=settings().webhook_allow_private,
        )
        endpoint_id, event_types = added.endpoint.id, added.endpoint.events
    click.echo(f"Added webhook endpoint {endpoint_id} for {event_types}.")
    click.echo(f"Secret (shown only now; the receiver checks signatures with it): {added.secret}")


@webhooks_group.command("list")
def list_command() -> None:
    """Each endpoint: id, events, whether addresses are sent, URL, and its events by status."""
    with session_scope() as session:
        endpoints = webhook_endpoints.every(session)
        counts = webhook_outbox.counts(session)
        for endpoint in endpoints:
            tally = counts.get(endpoint.id, {})
            figures = ", ".join(
                f"{tally.get(status, 0)} {status}" for status in ("pending", "delivered", "failed")
            )
            address = "with addresses" if endpoint.include_address else "uids only"
            click.echo(f"{endpoint.id}\t{endpoint.events}\t{address}\t{endpoint.url}\t{figures}")
    if not endpoints:
        click.echo("No webhook endpoints.")


@webhooks_group.command("remove")
@click.argument("endpoint_id", type=click.IntRange(1, 2**31 - 1))
def remove_command(endpoint_id: int) -> None:
    """Remove an endpoint; the events still owed to it are dropped."""
    with refusals(), session_scope() as session:
        webhook_endpoints.remove(session, endpoint_id)
    click.echo(f"Removed webhook endpoint {endpoint_id}.")
