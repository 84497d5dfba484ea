"""Pressroom's own webhook format, for a relay or script of the operator's.

    POST /api/v1/webhooks/generic
    X-Pressroom-Signature: sha256=<hex HMAC-SHA256 of the body, keyed with WEBHOOK_SECRET>
    {"events": [{"id": "...", "type": "bounce" | "complaint", "email": "a@b.example",
                 "action": "failed" | "delayed", "status": "5.1.1", "diagnostic": "...",
                 "message_id": "<...>", "envelope_sender": "bounces+...@..."}]}

`id` names the event (a retry sends the same); `email` and `type` are required, the rest
optional. A body is taken once: the same signed body again is a replay.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from service.domain.bounce_policy import Report
from service.domain.verp import VerpAddresses
from service.domain.webhooks.common import (
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

SIGNATURE_HEADER = "X-Pressroom-Signature"
MAX_EVENTS = 1000


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def read(post: Post, setup: WebhookSetup, verp: VerpAddresses | None, now: datetime) -> Posted:
    if not setup.generic:
        raise NotSetUp("WEBHOOK_SECRET")
    given = post.header(SIGNATURE_HEADER) or ""
    if not hmac.compare_digest(given.strip(), sign(setup.generic, post.body)):
        raise Refused()
    body = post.json()
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list) or len(events) > MAX_EVENTS:
        raise Unreadable(f'The body must be {{"events": [...]}} with at most {MAX_EVENTS}.')
    return Posted([_report(e, verp) for e in events], replay_key=given.strip())


def _report(event: Any, verp: VerpAddresses | None) -> Report:
    if not isinstance(event, dict) or not isinstance(event.get("email"), str):
        raise Unreadable("Each event needs an email.")
    kind = event.get("type")
    if kind not in ("bounce", "complaint"):
        raise Unreadable('An event\'s type is "bounce" or "complaint".')
    action = "complaint" if kind == "complaint" else text(event.get("action")) or "failed"
    if action not in ("failed", "delayed", "complaint"):
        raise Unreadable('A bounce\'s action is "failed" or "delayed".')
    return report(
        ReportDoor.GENERIC,
        action,
        verp,
        address=event["email"],
        status=text(event.get("status"), 16) or None,
        diagnostic=text(event.get("diagnostic")),
        message_id=text(event.get("message_id"), 300) or None,
        envelope_sender=text(event.get("envelope_sender"), 300) or None,
        report_id=text(event.get("id"), 200) or None,
    )
