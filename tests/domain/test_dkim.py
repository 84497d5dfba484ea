"""With a DKIM key configured, every email Pressroom writes carries a DKIM-Signature that verifies
(CONTRACT.md §2: "when set, every email carries a DKIM-Signature"): a reader's release, the
test copy, and the notices about a reader's own subscription. The notices went unsigned before:
a receiver enforcing DMARC could reject the very confirmation that starts a subscription."""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Callable
from datetime import UTC, datetime

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from service.domain import notices, releases
from service.domain.emails import EmailRenderer, OutgoingMail
from service.domain.mail_site import Dkim, MailSite
from service.domain.tokens import TokenSigner
from service.models import Subscriber, SubscriberStatus
from service.sending.messages import Composer

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
READER = "reader@mail.example"


@pytest.fixture(scope="module")
def keys() -> tuple[Dkim, bytes]:
    """The signing key and its DNS TXT record (v=DKIM1; k=rsa; p=...)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return Dkim(b"press", b"press.example", pem), b"v=DKIM1; k=rsa; p=" + b64encode(public)


def composer(key: Dkim | None) -> Composer:
    site = MailSite(
        "https://press.example", "Pressroom <noreply@press.example>", "Pressroom",
        "releases.press.example", dkim=key,
    )  # fmt: skip
    return Composer(EmailRenderer(), TokenSigner("test-secret-key-not-for-production"), site)


def release_copy(composer: Composer, *, test: bool) -> bytes:
    draft = releases.parse_release(
        {"title": "Gagarin", "summary": "Vostok 1", "body": "Tekst", "language": "nb"}, now=NOW
    )
    release = releases.release_from_draft(draft, slug="gagarin", id=7, published_at=NOW)
    if test:
        return composer.test_copy(release, "nb", READER, 1, now=NOW, key="task-1")
    return composer.release_message(release, "nb", now=NOW).for_recipient(READER, "uid-1")


def notice(kind: Callable[..., OutgoingMail]) -> Callable[[Composer], bytes]:
    def build(composer: Composer) -> bytes:
        subscriber = Subscriber(
            id=1, uid="uid-1", email=READER, language="nb", token_version=1,
            status=SubscriberStatus.CONFIRMED,
        )  # fmt: skip
        return kind(composer.notices, subscriber, now=NOW).data

    return build


KINDS: dict[str, Callable[[Composer], bytes]] = {
    "release": lambda c: release_copy(c, test=False),
    "test copy": lambda c: release_copy(c, test=True),
    "confirmation": notice(notices.confirmation_email),
    "already subscribed": notice(notices.already_subscribed_email),
    "welcome": notice(notices.welcome_email),
}


@pytest.mark.parametrize("kind", KINDS)
def test_every_email_is_signed_when_a_key_is_set(kind: str, keys: tuple[Dkim, bytes]) -> None:
    key, record = keys
    raw = KINDS[kind](composer(key))
    assert raw.startswith(b"DKIM-Signature:")
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: record)
    tampered = raw.replace(b"Pressroom", b"Pressrom", 2)
    assert not dkim.verify(tampered, dnsfunc=lambda name, timeout=5: record)


@pytest.mark.parametrize("kind", KINDS)
def test_no_email_is_signed_without_a_key(kind: str) -> None:
    assert b"DKIM-Signature" not in KINDS[kind](composer(None))


def test_a_releases_signature_covers_its_feedback_id(keys: tuple[Dkim, bytes]) -> None:
    key, _ = keys
    raw = KINDS["release"](composer(key))
    signature = raw.split(b"\r\n\r\n", 1)[0].split(b"DKIM-Signature:", 1)[1]
    tags = b"".join(signature.split()).split(b";")
    signed = next(t for t in tags if t.startswith(b"h=")).removeprefix(b"h=").split(b":")
    assert b"feedback-id" in signed
