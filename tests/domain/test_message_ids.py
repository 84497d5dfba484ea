"""Every message has a Message-ID of its own, under MAIL_FROM's domain (issue 10, item 1);
only a retry of one delivery of a release to one reader carries the ID of its first try
(CONTRACT.md: "unique per recipient and stable across retries", which exactly-once relies on).

Gmail folds messages that share a Message-ID: a second test copy of a release, or a second
confirmation email, could otherwise never show.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from service.config import Settings
from service.domain import mail_headers, notices, releases
from service.domain.emails import EmailRenderer
from service.domain.mail_site import MailSite
from service.domain.release_messages import ReleaseMessage
from service.domain.tokens import TokenSigner
from service.models import Subscriber, SubscriberStatus

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
DOMAIN = "nyheter.press.example"
RENDERER = EmailRenderer()
SIGNER = TokenSigner("test-secret-key-not-for-production")


@pytest.fixture(scope="module")
def config() -> Settings:
    settings = Settings(
        secret_key="test-secret-key-not-for-production",
        redis_url="redis://unused",
        base_url="http://localhost:8000",
        mail_from=f"Pressroom <noreply@{DOMAIN}>",
        testing=True,
    )
    settings.validate()
    return settings


def message_id(raw: bytes) -> str:
    return str(message_from_bytes(raw, policy=policy.default)["Message-ID"])


def release_message(config: Settings, *, test: bool = False) -> ReleaseMessage:
    draft = releases.parse_release(
        {"title": "Gagarin", "summary": "Vostok 1", "body": "Tekst", "language": "nb"}, now=NOW
    )
    release = releases.release_from_draft(draft, slug="gagarin", id=7, published_at=NOW)
    site = MailSite.from_settings(config)
    return ReleaseMessage(RENDERER, SIGNER, site, release, "nb", now=NOW, test=test)


def notice(config: Settings, kind: str, **kwargs: object) -> bytes:
    ctx = notices.NoticeContext(RENDERER, SIGNER, MailSite.from_settings(config))
    subscriber = Subscriber(
        id=1, uid="uid-1", email="reader@mail.example", language="nb", token_version=1,
        status=SubscriberStatus.CONFIRMED,
    )  # fmt: skip
    build = getattr(notices, f"{kind}_email")
    return build(ctx, subscriber, now=NOW, **kwargs).data


def test_two_test_copies_of_one_release_have_their_own_ids(config: Settings) -> None:
    ids = {
        message_id(release_message(config, test=True).for_recipient("desk@press.example", "t"))
        for _ in range(2)
    }
    assert len(ids) == 2
    assert all(value.endswith(f"@{DOMAIN}>") for value in ids)


def test_two_previews_have_their_own_ids(config: Settings) -> None:
    message = release_message(config)
    ids = {
        message_id(
            message.for_recipient(
                "desk@press.example", "preview-1", message_id=mail_headers.new_msg_id(DOMAIN)
            )
        )
        for _ in range(2)
    }
    assert len(ids) == 2
    assert all(value.endswith(f"@{DOMAIN}>") for value in ids)


@pytest.mark.parametrize("kind", ["confirmation", "already_subscribed", "welcome"])
def test_two_notices_have_their_own_ids(config: Settings, kind: str) -> None:
    ids = {message_id(notice(config, kind)) for _ in range(2)}
    assert len(ids) == 2
    assert all(value.endswith(f"@{DOMAIN}>") for value in ids)


def test_a_retry_of_one_delivery_keeps_its_id(config: Settings) -> None:
    """A release to a reader (built afresh, as after a crash) and a notice retried by its task
    (the task's retries keep its id)."""
    first = message_id(release_message(config).for_recipient("reader@mail.example", "uid-1"))
    again = message_id(release_message(config).for_recipient("reader@mail.example", "uid-1"))
    other = message_id(release_message(config).for_recipient("other@mail.example", "uid-2"))
    assert first == again != other
    assert first.endswith(f"@{DOMAIN}>")

    task_id = "0b6f5d1e-6f4a-4c43-9d43-5f2b8f2f7c11"
    tries = {
        message_id(
            notice(config, "confirmation", message_id=mail_headers.new_msg_id(DOMAIN, key=task_id))
        )
        for _ in range(2)
    }
    assert len(tries) == 1
    assert tries != {mail_headers.new_msg_id(DOMAIN, key="another-task")}


def test_a_message_id_is_a_valid_msg_id_or_refused() -> None:
    for value in (mail_headers.new_msg_id(DOMAIN), mail_headers.new_msg_id(DOMAIN, key="k")):
        assert mail_headers.message_id("Message-ID", value)
    with pytest.raises(mail_headers.HeaderError):
        mail_headers.new_msg_id("[127.0.0.1]")
