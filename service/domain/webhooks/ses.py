"""Amazon SES events through Amazon SNS (docs.aws.amazon.com: SES "Notification contents",
SNS "Verifying the signatures of Amazon SNS messages").

SNS posts JSON with `Type` SubscriptionConfirmation or Notification, signed with RSA over
the message's fields in a fixed order (SignatureVersion 1: SHA1, 2: SHA256) by the key of a
certificate at `SigningCertURL`, an https URL at sns.<region>.amazonaws.com. Only topics
named in SES_SNS_TOPIC_ARNS are taken: anybody can make a topic and point it here. A
subscription is confirmed by a GET of its SubscribeURL. A Notification's `Message` is the
SES event: `notificationType` (or `eventType`) Bounce with `bounce.bounceType` Permanent,
Transient or Undetermined and `bouncedRecipients`, or Complaint with `complainedRecipients`;
`mail.source` is the envelope sender (our VERP address), `mail.commonHeaders.messageId` the
Message-ID.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

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

MAX_AGE_SECONDS = 60 * 60  # SNS retries a delivery for up to an hour by default
_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
}  # fmt: skip
_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
# SES bounce sub-types that are the message's doing, not the address's (SES's "bounce types").
_MESSAGE_BOUNCES = {
    "MessageTooLarge": "5.3.4",
    "ContentRejected": "5.6.0",
    "AttachmentRejected": "5.6.0",
}

_certificates: dict[str, rsa.RSAPublicKey] = {}
_lock = threading.Lock()

Fetch = Callable[[str], bytes]


def is_sns_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" and _SNS_HOST.match(parts.hostname or "") is not None


def read(post: Post, setup: WebhookSetup, verp: VerpAddresses | None, now: datetime) -> Posted:
    if not setup.ses_topics:
        raise NotSetUp("SES_SNS_TOPIC_ARNS")
    message = post.json()
    if not isinstance(message, dict) or message.get("Type") not in _SIGNED_FIELDS:
        raise Unreadable("Not an SNS notification or subscription confirmation.")
    if message.get("TopicArn") not in setup.ses_topics:
        raise Refused()
    _verify(message, setup.fetch)
    try:
        sent = datetime.fromisoformat(str(message.get("Timestamp")).replace("Z", "+00:00"))
    except ValueError:
        raise Refused() from None
    if sent.tzinfo is None or abs((now - sent).total_seconds()) > MAX_AGE_SECONDS:
        raise Refused()
    replay_key = f"ses:{text(message.get('MessageId'), 100)}"
    if message["Type"] == "SubscriptionConfirmation":
        url = str(message.get("SubscribeURL", ""))
        if not is_sns_url(url):
            raise Refused()
        return Posted(replay_key=replay_key, confirm_url=url)
    try:
        event = json.loads(str(message.get("Message", "")))
    except ValueError:
        raise Unreadable("The SNS Message is not an SES event.") from None
    if not isinstance(event, dict):
        raise Unreadable("The SNS Message is not an SES event.")
    return Posted(_reports(event, verp), replay_key=replay_key)


def _verify(message: dict[str, Any], fetch: Fetch) -> None:
    version = str(message.get("SignatureVersion", ""))
    url = str(message.get("SigningCertURL", ""))
    if version not in _HASHES or not is_sns_url(url) or not url.endswith(".pem"):
        raise Refused()
    fields = _SIGNED_FIELDS[message["Type"]]
    signed = "".join(
        f"{name}\n{message[name]}\n" for name in fields if message.get(name) is not None
    ).encode()
    try:
        _certificate(url, fetch).verify(
            base64.b64decode(str(message.get("Signature", ""))),
            signed,
            padding.PKCS1v15(),
            _HASHES[version](),
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise Refused() from None


def _certificate(url: str, fetch: Fetch) -> rsa.RSAPublicKey:
    with _lock:
        if url in _certificates:
            return _certificates[url]
    try:
        key = x509.load_pem_x509_certificate(fetch(url)).public_key()
    except (OSError, ValueError):
        raise Refused() from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise Refused()
    with _lock:
        _certificates[url] = key
    return key


def _reports(event: dict[str, Any], verp: VerpAddresses | None) -> list[Report]:
    kind = event.get("notificationType") or event.get("eventType")
    mail = event.get("mail") if isinstance(event.get("mail"), dict) else {}
    common = mail.get("commonHeaders") if isinstance(mail.get("commonHeaders"), dict) else {}
    found = []
    if kind == "Bounce" and isinstance(event.get("bounce"), dict):
        bounce = event["bounce"]
        permanent = bounce.get("bounceType") == "Permanent"
        sub_type = str(bounce.get("bounceSubType", ""))
        for recipient in bounce.get("bouncedRecipients") or []:
            if not isinstance(recipient, dict):
                continue
            status = text(recipient.get("status"), 16) or None
            if sub_type in _MESSAGE_BOUNCES:
                status = _MESSAGE_BOUNCES[sub_type]
            elif sub_type in ("Suppressed", "OnAccountSuppressionList", "NoEmail"):
                status = "5.1.1"
            elif sub_type == "MailboxFull":
                status = "5.2.2"
            found.append(
                (recipient, "failed" if permanent else "delayed", status, bounce.get("feedbackId"))
            )
    elif kind == "Complaint" and isinstance(event.get("complaint"), dict):
        complaint = event["complaint"]
        if complaint.get("complaintFeedbackType") == "not-spam":
            return []
        for recipient in complaint.get("complainedRecipients") or []:
            if isinstance(recipient, dict):
                found.append((recipient, "complaint", None, complaint.get("feedbackId")))
    return [
        report(
            ReportDoor.SES,
            action,
            verp,
            address=text(recipient.get("emailAddress"), 320) or None,
            status=status,
            diagnostic=text(recipient.get("diagnosticCode")),
            message_id=text(common.get("messageId"), 300) or None,
            envelope_sender=text(mail.get("source"), 300) or None,
            report_id=f"{text(feedback, 200)}:{text(recipient.get('emailAddress'), 320)}",
        )
        for recipient, action, status, feedback in found
    ]
