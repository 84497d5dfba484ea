"""The outgoing webhooks' signature: the Standard Webhooks scheme, checked against the
specification's published test vector, a vector computed here with hmac and base64, and the
README's verification snippet run on what the service sends."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from pathlib import Path

from service.domain import webhook_signing

ROOT = Path(__file__).resolve().parents[2]

# The test vector of the Standard Webhooks specification (and its reference libraries).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = '{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_signature_matches_the_specifications_test_vector() -> None:
    assert (
        webhook_signing.signature(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE
    )


def test_the_signature_is_hmac_sha256_of_id_timestamp_and_body_with_the_decoded_key() -> None:
    key = bytes(range(24))
    secret = "whsec_" + base64.b64encode(key).decode()
    body = '{"type":"release.sent","data":{"release":{"id":7,"title":"Æ ø å"}}}'
    signed = f"msg_1.1700000000.{body}".encode()
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert webhook_signing.signature(secret, "msg_1", 1700000000, body) == expected


def test_a_new_secret_is_whsec_and_24_random_bytes() -> None:
    first, second = webhook_signing.new_secret(), webhook_signing.new_secret()
    assert first.startswith("whsec_") and first != second
    assert len(webhook_signing.key_of(first)) == 24


def test_a_receiver_accepts_a_fresh_signature_and_refuses_changes_and_old_ones() -> None:
    secret = webhook_signing.new_secret()
    body = '{"type":"subscriber.confirmed"}'
    headers = webhook_signing.headers(secret, "msg_2", 1700000000, body)
    assert webhook_signing.verify(secret, headers, body, now=1700000060)
    assert not webhook_signing.verify(secret, headers, body + " ", now=1700000060)
    assert not webhook_signing.verify(webhook_signing.new_secret(), headers, body, now=1700000060)
    assert not webhook_signing.verify(secret, headers, body, now=1700000000 + 301)
    rotated = {
        **headers,
        "webhook-signature": "v1,bm90IHRoaXMgb25l " + headers["webhook-signature"],
    }
    assert webhook_signing.verify(secret, rotated, body, now=1700000000)


def readme_snippet() -> str:
    """The Python block of README's "Outgoing webhooks" section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Outgoing webhooks", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "README's Outgoing webhooks section has no Python snippet"
    return match.group(1)


def test_the_readme_snippet_verifies_what_is_sent_and_refuses_a_forgery() -> None:
    scope: dict[str, object] = {}
    exec(compile(readme_snippet(), "README.md", "exec"), scope)
    is_genuine = scope["is_genuine"]
    secret = webhook_signing.new_secret()
    body = '{"type":"release.published","timestamp":"2026-12-01T06:00:00Z","data":{}}'
    now = int(time.time())
    headers = webhook_signing.headers(secret, "msg_3", now, body)
    assert is_genuine(secret, headers, body.encode())  # type: ignore[operator]
    assert not is_genuine(secret, headers, body.encode() + b" ")  # type: ignore[operator]
    stale = webhook_signing.headers(secret, "msg_3", now - 600, body)
    assert not is_genuine(secret, stale, body.encode())  # type: ignore[operator]
