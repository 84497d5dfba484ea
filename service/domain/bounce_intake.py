"""A report mail, from the bounce server or `bounces read`, through the one policy.

A mail sent to a VERP address names its delivery whatever its body says: a mail system's
bounce that no detector can read still counts as a bounce of that delivery, of unknown cause
(a soft bounce, bounce_policy.classify); a person's reply or an auto-reply does not. Mail to
the bare bounce address, or without BOUNCE_ADDRESS, is traced by the recipients it reports,
each only with the original's Message-ID: anybody can write a "bounce" naming an address.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from service.domain import bounce_policy, report_mail
from service.domain.bounce_policy import Report, Taken
from service.domain.verp import VerpAddresses, VerpTarget
from service.models import ReportDoor, ReportKind


def reports_in(
    mail: report_mail.ReportMail, door: ReportDoor, verp: VerpAddresses | None
) -> list[Report]:
    """The policy's reports for what `mail` says (none for an auto-reply).

    A VERP code names one delivery (one recipient a message): it goes with the report's
    worst line alone, and the others are dropped. Without one, each line names its reader
    only with the original's Message-ID (bounce_policy.Report.address_vouched)."""
    if mail.auto_reply:
        return []
    target = _target(mail.trace_addresses, verp)
    lines = mail.recipients
    if not lines and target is not None and mail.from_mail_system:
        lines = (report_mail.FailedRecipient(None, "failed", None),)
    if target is not None and lines:
        lines = (min(lines, key=_severity),)
    delivery_id = target.id if target is not None and target.named == "delivery" else None
    subscriber_id = target.id if target is not None and target.named == "subscriber" else None
    return [
        Report(
            door=door,
            action=line.action,
            status=line.status,
            diagnostic=line.diagnostic,
            address=line.address,
            delivery_id=delivery_id,
            subscriber_id=subscriber_id,
            message_id=mail.original_message_id,
            report_id=mail.report_id,
        )
        for line in lines
    ]


def _severity(line: report_mail.FailedRecipient) -> int:
    kind = bounce_policy.classify(line.action, line.status, line.diagnostic)
    return _ORDER.index(kind)


_ORDER = [ReportKind.COMPLAINT, ReportKind.HARD_BOUNCE, ReportKind.REFUSAL, ReportKind.SOFT_BOUNCE]


def take_mail(
    session: Session,
    data: bytes,
    *,
    door: ReportDoor,
    verp: VerpAddresses | None,
    now: datetime,
    envelope_recipients: Iterable[str] = (),
) -> list[Taken]:
    """Read one report mail and apply each report in it (the caller commits)."""
    mail = report_mail.read(data, envelope_recipients=envelope_recipients)
    return [bounce_policy.take(session, report, now=now) for report in reports_in(mail, door, verp)]


def _target(addresses: Iterable[str], verp: VerpAddresses | None) -> VerpTarget | None:
    if verp is None:
        return None
    for address in addresses:
        target = verp.read(address)
        if target is not None:
            return target
    return None
