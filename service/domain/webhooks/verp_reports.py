"""A provider's event as the policy's Report: the envelope sender it echoes, when it is one
of our VERP addresses, names the delivery; else its address does, as the provider signed it."""

from __future__ import annotations

from service.domain.bounce_policy import Report
from service.domain.verp import VerpAddresses
from service.models import ReportDoor, ReportKind


def report(
    door: ReportDoor,
    action: str,
    verp: VerpAddresses | None,
    *,
    address: str | None,
    status: str | None = None,
    diagnostic: str = "",
    message_id: str | None = None,
    envelope_sender: str | None = None,
    report_id: str | None = None,
    kind: ReportKind | None = None,
) -> Report:
    target = verp.read(envelope_sender) if verp and envelope_sender else None
    return Report(
        door=door,
        action=action,
        status=status,
        diagnostic=diagnostic,
        address=address,
        delivery_id=target.id if target and target.named == "delivery" else None,
        subscriber_id=target.id if target and target.named == "subscriber" else None,
        message_id=message_id,
        report_id=report_id,
        kind=kind,
        address_vouched=True,  # the provider signed the post
    )
