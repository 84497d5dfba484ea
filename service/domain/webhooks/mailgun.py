"""Mailgun's webhooks (documentation.mailgun.com, "Securing webhooks" and "Events"):

    {"signature": {"timestamp": "1796032800", "token": "<50 hex>", "signature": "<hex>"},
     "event-data": {"event": "failed" | "complained" | ..., "id": "...", "severity":
                    "permanent" | "temporary", "reason": "...", "recipient": "a@b.example",
                    "envelope": {"sender": "..."}, "message": {"headers": {"message-id": ...}},
                    "delivery-status": {"code": 550, "enhanced-code": "5.1.1", "message": ...}}}

The signature is HMAC-SHA256 of timestamp and token, keyed with the HTTP webhook signing
key; a timestamp older than 5 minutes, or a token seen before, is a replay.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

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


def sign(key: str, timestamp: str, token: str) -> str:
    return hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def read(post: Post, setup: WebhookSetup, verp: VerpAddresses | None, now: datetime) -> Posted:
    if not setup.mailgun:
        raise NotSetUp("MAILGUN_WEBHOOK_SIGNING_KEY")
    body = post.json()
    signature = body.get("signature") if isinstance(body, dict) else None
    if not isinstance(signature, dict):
        raise Refused()
    timestamp, token, given = (
        str(signature.get(k, "")) for k in ("timestamp", "token", "signature")
    )
    if not (timestamp.isdigit() and token) or not hmac.compare_digest(
        given, sign(setup.mailgun, timestamp, token)
    ):
        raise Refused()
    if abs(now.timestamp() - int(timestamp)) > MAX_AGE_SECONDS:
        raise Refused()
    event = body.get("event-data")
    if not isinstance(event, dict):
        raise Unreadable('A Mailgun event has "event-data".')
    return Posted(_reports(event, verp), replay_key=f"mailgun:{token}")


def _reports(event: dict[str, Any], verp: VerpAddresses | None) -> list:  # type: ignore[type-arg]
    name = event.get("event")
    if name == "complained":
        action = "complaint"
    elif name == "failed":
        action = "failed" if event.get("severity") == "permanent" else "delayed"
    else:
        return []  # delivered, opened, ...: nothing for the policy
    status = event.get("delivery-status") if isinstance(event.get("delivery-status"), dict) else {}
    code = status.get("enhanced-code") or (
        f"{int(status['code']) // 100}.0.0" if str(status.get("code", "")).isdigit() else None
    )
    if event.get("reason") == "suppress-bounce":
        code = code or "5.1.1"  # Mailgun did not try: the address bounced hard before
    headers = (event.get("message") or {}).get("headers") or {}
    message_id = text(headers.get("message-id"), 300)
    envelope = event.get("envelope") if isinstance(event.get("envelope"), dict) else {}
    return [
        report(
            ReportDoor.MAILGUN,
            action,
            verp,
            address=text(event.get("recipient"), 320) or None,
            status=text(code, 16) or None,
            diagnostic=text(status.get("message") or status.get("description")),
            message_id=f"<{message_id.strip('<>')}>" if message_id else None,
            envelope_sender=text(envelope.get("sender"), 300) or None,
            report_id=text(event.get("id"), 200) or None,
        )
    ]
