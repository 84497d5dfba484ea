"""Postmark's bounce and spam complaint webhooks (postmarkapp.com/developer/webhooks).
Postmark signs nothing: it protects a webhook with HTTP Basic auth in its URL
(`https://pressroom:<WEBHOOK_SECRET>@press.example/api/v1/webhooks/postmark`), checked here.

    {"RecordType": "Bounce" | "SpamComplaint", "ID": 4323372036854775807,
     "Type": "HardBounce" | "SoftBounce" | "Transient" | "SpamComplaint" | ...,
     "Email": "a@b.example", "Description": "...", "Details": "...", "MessageID": "...",
     "Content": "the bounce as received (with the webhook's Include bounce content)"}

Postmark's MessageID is its own, and a message sent over its SMTP service carries no VERP
address back. The release is known from our Message-ID inside "Content", the bounce's copy
of the original's headers, when the webhook includes it (bounce_policy traces it with the
reader); without it the report still counts against the reader.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from datetime import datetime
from typing import Any

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

# Postmark's bounce types (postmarkapp.com/developer/api/bounce-api#bounce-types), by what
# they say: (action, RFC 3463 status).
TYPES: dict[str, tuple[str, str | None]] = {
    "HardBounce": ("failed", "5.1.1"),
    "BadEmailAddress": ("failed", "5.1.3"),
    "SoftBounce": ("delayed", "4.0.0"),
    "Transient": ("delayed", "4.0.0"),
    "DnsError": ("delayed", "4.4.3"),
    "SpamComplaint": ("complaint", None),
    "SpamNotification": ("failed", "5.7.1"),  # refused or filed as spam: the message's
    "Blocked": ("failed", "5.7.1"),
    "DMARCPolicy": ("failed", "5.7.26"),
    "VirusNotification": ("failed", "5.7.1"),
}


# Our Message-ID among the headers a bounce quotes (release_messages.delivery_message_id).
_MESSAGE_ID = re.compile(
    r"^Message-ID:[ \t]*(?:\r?\n[ \t]+)?(<release-[^<>\s]{1,200}>)", re.IGNORECASE | re.MULTILINE
)
CONTENT_READ = 256 * 1024  # characters of "Content" searched: the headers come first


def read(post: Post, setup: WebhookSetup, verp: VerpAddresses | None, now: datetime) -> Posted:
    if not setup.generic:
        raise NotSetUp("WEBHOOK_SECRET")
    scheme, _, credentials = (post.header("Authorization") or "").partition(" ")
    try:
        _, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Refused() from None
    if scheme.lower() != "basic" or not hmac.compare_digest(password, setup.generic):
        raise Refused()
    body = post.json()
    if not isinstance(body, dict) or "RecordType" not in body:
        raise Unreadable("A Postmark webhook posts one record with a RecordType.")
    return Posted(_reports(body, verp), replay_key=f"postmark:{text(body.get('ID'), 40)}")


def _reports(record: dict[str, Any], verp: VerpAddresses | None) -> list:  # type: ignore[type-arg]
    kind = record.get("Type")
    if record.get("RecordType") == "SpamComplaint":
        kind = "SpamComplaint"
    if kind not in TYPES or not isinstance(record.get("Email"), str):
        return []  # AutoResponder, ChallengeVerification, Subscribe, ...: nothing to do
    action, status = TYPES[kind]
    return [
        report(
            ReportDoor.POSTMARK,
            action,
            verp,
            address=record["Email"],
            status=status,
            diagnostic=text(record.get("Details") or record.get("Description")),
            report_id=text(record.get("ID"), 40) or None,
            message_id=_our_message_id(record.get("Content")),
        )
    ]


def _our_message_id(content: object) -> str | None:
    if not isinstance(content, str):
        return None
    found = _MESSAGE_ID.search(content[:CONTENT_READ])
    return found.group(1) if found else None
