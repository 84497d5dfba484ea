"""Keys the test app's webhooks are set up with (tests/conftest.make_settings), and posts
signed with them the way each provider signs (service/domain/webhooks)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

WEBHOOK_SECRET = "webhook-secret-for-tests-only"
MAILGUN_KEY = "key-mailgun-signing-for-tests"
SES_TOPIC = "arn:aws:sns:eu-west-1:123456789012:pressroom-ses-events"
SNS_CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-tests.pem"

_SENDGRID = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC_KEY = base64.b64encode(
    _SENDGRID.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()

_SNS = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
SNS_CERTIFICATE = (
    x509.CertificateBuilder()
    .subject_name(_NAME)
    .issuer_name(_NAME)
    .public_key(_SNS.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(datetime.now(UTC) - timedelta(days=1))
    .not_valid_after(datetime.now(UTC) + timedelta(days=30))
    .sign(_SNS, hashes.SHA256())
    .public_bytes(serialization.Encoding.PEM)
)

Signed = tuple[bytes, dict[str, str]]


def generic(events: list[dict[str, Any]], secret: str = WEBHOOK_SECRET) -> Signed:
    body = json.dumps({"events": events}).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Pressroom-Signature": signature, "Content-Type": "application/json"}


def mailgun(event: dict[str, Any], key: str = MAILGUN_KEY, *, age: float = 0) -> Signed:
    timestamp, token = str(int(time.time() - age)), secrets.token_hex(25)
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    body = {"signature": {"timestamp": timestamp, "token": token, "signature": signature}}
    return json.dumps({**body, "event-data": event}).encode(), {"Content-Type": "application/json"}


def sendgrid(
    events: list[dict[str, Any]], *, key: ec.EllipticCurvePrivateKey = _SENDGRID
) -> Signed:
    body = json.dumps(events).encode()
    timestamp = str(int(time.time()))
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return body, {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        "Content-Type": "application/json",
    }


def postmark(record: dict[str, Any], password: str = WEBHOOK_SECRET) -> Signed:
    credentials = base64.b64encode(f"pressroom:{password}".encode()).decode()
    return json.dumps(record).encode(), {
        "Authorization": f"Basic {credentials}",
        "Content-Type": "application/json",
    }


def sns(kind: str, fields: dict[str, str], *, key: rsa.RSAPrivateKey = _SNS) -> Signed:
    """An SNS message of `kind` (Notification, SubscriptionConfirmation), SignatureVersion 2."""
    message = {
        "Type": kind,
        "MessageId": secrets.token_hex(16),
        "TopicArn": SES_TOPIC,
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        **fields,
    }
    order = {
        "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
        "SubscriptionConfirmation": (
            "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
        ),
    }[kind]  # fmt: skip
    signed = "".join(f"{n}\n{message[n]}\n" for n in order if n in message).encode()
    signature = key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    message.update(
        SignatureVersion="2",
        Signature=base64.b64encode(signature).decode(),
        SigningCertURL=SNS_CERT_URL,
    )
    return json.dumps(message).encode(), {
        "x-amz-sns-message-type": kind,
        "Content-Type": "text/plain; charset=UTF-8",
    }
