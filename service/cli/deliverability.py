"""`flask --app service deliverability check`: SPF, DKIM, DMARC, MX and https, as mailbox
providers see them (domain.deliverability), one line each; exit status 1 when one fails."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from service.app_state import settings
from service.dns_lookup import lookup_via
from service.domain.deliverability import Identity, Level, check

deliverability_group = AppGroup(
    "deliverability", help="Will mailbox providers take our mail? DNS and settings checked."
)


@deliverability_group.command("check")
def check_command() -> None:
    """Check SPF, DKIM, DMARC, the bounce domain's MX and BASE_URL's https (DNS_RESOLVER, or
    the system's resolver)."""
    config = settings()
    findings = check(Identity.from_settings(config), lookup_via(config.dns_resolver))
    for finding in findings:
        click.echo(f"{finding.level.value:<5} {finding.check}: {finding.detail}")
        if finding.publish:
            click.echo(f"      publish: {finding.publish}")
    if any(f.level is Level.FAIL for f in findings):
        raise SystemExit(1)
