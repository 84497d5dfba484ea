"""What every provider's reader shares: the post, the keys, the answer, the refusals."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from service.domain.bounce_policy import Report
from service.domain.errors import N_, DomainError, ErrorKind

MAX_AGE_SECONDS = 5 * 60  # a signed timestamp older than this is a replay (Mailgun's advice)


class Refused(DomainError):
    """Not signed by the provider, signed with another key, or signed too long ago."""

    code = "bad_signature"
    kind = ErrorKind.UNAUTHENTICATED
    message = N_("The post is not signed by the provider, or its signature has expired.")

    def __init__(self) -> None:
        super().__init__()


class Unreadable(DomainError):
    """Not a body this provider sends."""

    code = "malformed_request"
    kind = ErrorKind.MALFORMED
    message = N_("The body is not what this provider sends: %(reason)s")

    def __init__(self, reason: str) -> None:
        super().__init__(reason=reason)


class NotSetUp(DomainError):
    """The operator set no key for this provider, so no post can be verified."""

    code = "not_set_up"
    kind = ErrorKind.NOT_FOUND
    message = N_("This webhook is not set up: set %(setting)s.")

    def __init__(self, setting: str) -> None:
        super().__init__(setting=setting)


class Replayed(DomainError):
    """A signed post taken before, posted again."""

    code = "replayed"
    kind = ErrorKind.CONFLICT
    message = N_("This post was taken before.")


def _no_fetching(url: str) -> bytes:
    raise OSError("no fetching set up")


@dataclass(frozen=True)
class WebhookSetup:
    """WEBHOOK_SECRET (ours, HMAC-SHA256; Postmark's Basic auth password), Mailgun's HTTP
    webhook signing key, SendGrid's verification public key (base64 DER, ECDSA P-256), the
    SNS topic ARNs that carry Amazon SES events, and how to GET a URL (the SNS signing
    certificates)."""

    generic: str | None = None
    mailgun: str | None = None
    sendgrid: str | None = None
    ses_topics: tuple[str, ...] = ()
    fetch: Callable[[str], bytes] = _no_fetching


@dataclass(frozen=True)
class Post:
    """An HTTP POST as it came: header names in any case, the body as bytes."""

    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise Unreadable("The body is not valid JSON.") from None


@dataclass(frozen=True)
class Posted:
    """What a verified post says. `replay_key`: a value unique to this signed post, which a
    second post may not repeat; `confirm_url`: a subscription to confirm by a GET (SNS)."""

    reports: list[Report] = field(default_factory=list)
    replay_key: str | None = None
    confirm_url: str | None = None


def text(value: Any, limit: int = 500) -> str:
    return " ".join(str(value).split())[:limit] if value is not None else ""
