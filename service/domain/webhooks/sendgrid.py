"""SendGrid's Event Webhook with signature verification (docs.sendgrid.com, "Getting Started
with the Event Webhook Security Features"): a JSON array of events, signed with ECDSA P-256
over SHA-256 of the timestamp followed by the body, in two headers:

    X-Twilio-Email-Event-Webhook-Signature: <base64 DER signature>
    X-Twilio-Email-Event-Webhook-Timestamp: <unix seconds>

checked with the verification key the account shows (base64 DER public key). Events read:
bounce (`type` bounce or blocked, with `status`, `reason`, `bounce_classification`),
deferred, dropped (for an address SendGrid suppressed), spamreport; by `email`, `sg_event_id`
and `smtp-id` (the Message-ID).
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from service.domain.bounce_policy import Report
from service.domain.verp import VerpAddresses
from service.domain.webhooks.common import (
    MAX_AGE_SECONDS,
    NotSetUp,
    Post,
    Posted,
    Refused,
    Unreadable,
    WebhookSetup,
    text,
)
from service.domain.webhooks.verp_reports import report
from service.models import ReportDoor

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
MAX_EVENTS = 5000
# A "blocked" bounce is the receiver's view of us or the message (SendGrid's classes), unless
# its class says the address itself is bad.
_READER_CLASSES = {"invalid address", "mailbox unavailable"}


def read(post: Post, setup: WebhookSetup, verp: VerpAddresses | None, now: datetime) -> Posted:
    if not setup.sendgrid:
        raise NotSetUp("SENDGRID_WEBHOOK_PUBLIC_KEY")
    signature, timestamp = post.header(SIGNATURE_HEADER), post.header(TIMESTAMP_HEADER)
    if not signature or not timestamp or not timestamp.strip().isdigit():
        raise Refused()
    try:
        key = load_der_public_key(base64.b64decode(setup.sendgrid))
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise NotSetUp("SENDGRID_WEBHOOK_PUBLIC_KEY")
        key.verify(
            base64.b64decode(signature),
            timestamp.strip().encode() + post.body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise Refused() from None
    if abs(now.timestamp() - int(timestamp)) > MAX_AGE_SECONDS:
        raise Refused()
    events = post.json()
    if not isinstance(events, list) or len(events) > MAX_EVENTS:
        raise Unreadable(f"SendGrid posts a JSON array of at most {MAX_EVENTS} events.")
    reports = [r for event in events if (r := _report(event, verp)) is not None]
    return Posted(reports, replay_key=f"sendgrid:{signature.strip()}")


def _report(event: Any, verp: VerpAddresses | None) -> Report | None:
    if not isinstance(event, dict) or not isinstance(event.get("email"), str):
        raise Unreadable("Each SendGrid event has an email.")
    name = event.get("event")
    status = text(event.get("status"), 16) or None
    reason = text(event.get("reason"))
    if name == "bounce":
        action = "failed"
        blocked = event.get("type") == "blocked"
        if blocked and text(event.get("bounce_classification")).lower() not in _READER_CLASSES:
            status = "5.7.1"  # the receiver refused us or the message, not the address
    elif name == "deferred":
        action = "delayed"
    elif name == "spamreport":
        action = "complaint"
    elif name == "dropped" and "bounced address" in reason.lower():
        action, status = "failed", "5.1.1"
    elif name == "dropped" and "spam reporting address" in reason.lower():
        action = "complaint"
    else:
        return None  # delivered, open, click, unsubscribe (ours already), ...
    smtp_id = text(event.get("smtp-id"), 300)
    return report(
        ReportDoor.SENDGRID,
        action,
        verp,
        address=event["email"],
        status=status,
        diagnostic=reason,
        message_id=smtp_id or None,
        report_id=text(event.get("sg_event_id"), 200) or None,
    )
