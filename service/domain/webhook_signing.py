"""The signature on outgoing webhooks, by the Standard Webhooks scheme
(https://www.standardwebhooks.com/, "Webhook Signatures"):

    webhook-id:        the event's id, the same on every attempt (receivers drop repeats)
    webhook-timestamp: seconds since the Unix epoch, when this attempt was signed
    webhook-signature: v1,<base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}")>

The secret is `whsec_` followed by the base64 of the key (24 random bytes here); the key is
what follows `whsec_`, base64-decoded. README "Outgoing webhooks" shows a receiver's check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
KEY_BYTES = 24
TOLERANCE_SECONDS = 300  # a receiver refuses a timestamp further than this from its clock


def new_secret() -> str:
    """A fresh endpoint secret: `whsec_` and 32 base64 characters."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def key_of(secret: str) -> bytes:
    """The HMAC key a `whsec_...` secret stands for. Raises ValueError for anything else."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)


def signature(secret: str, event_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` header's value for one attempt: `v1,<base64 digest>`."""
    signed = f"{event_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key_of(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(secret: str, event_id: str, timestamp: int, body: str) -> dict[str, str]:
    """Every header of one attempt's POST, the signature's three and the content type."""
    return {
        "content-type": "application/json",
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, event_id, timestamp, body),
    }


def verify(secret: str, received: dict[str, str], body: str, *, now: int) -> bool:
    """What a receiver does (and what README's snippet does): the timestamp within
    TOLERANCE_SECONDS of `now`, and one of the space-separated `v1,` signatures matching."""
    try:
        timestamp = int(received["webhook-timestamp"])
        event_id = received["webhook-id"]
        offered = received["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        return False
    expected = signature(secret, event_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)
