"""Who sends: the site's mail identity (MAIL_FROM, SITE_NAME, LIST_ID, BASE_URL, TIMEZONE) and its
DKIM key, shared by every email Pressroom writes (releases, test copies, notices, invitations)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from zoneinfo import ZoneInfo

from service.config import Settings
from service.domain import mail_headers

CRLF = b"\r\n"
DEFAULT_ZONE = ZoneInfo("Europe/Oslo")  # config.Settings.timezone's default

# Signed when present, and named once more than they occur (RFC 6376 §5.4.2), so that a header
# added on the way (a second Subject, a List-Unsubscribe) breaks the signature.
DKIM_HEADERS = [
    b"from", b"to", b"subject", b"date", b"message-id",
    b"list-id", b"list-unsubscribe", b"list-unsubscribe-post", b"feedback-id",
]  # fmt: skip


@dataclass(frozen=True)
class Dkim:
    """DKIM_SELECTOR, DKIM_DOMAIN and the PEM private key (RSA or Ed25519), as bytes."""

    selector: bytes
    domain: bytes
    private_key: bytes


@dataclass(frozen=True)
class MailSite:
    base_url: str  # BASE_URL without its trailing slash
    mail_from: str
    site_name: str
    list_id: str
    dkim: Dkim | None = None
    zone: ZoneInfo = DEFAULT_ZONE  # TIMEZONE: the day a release is dated by

    @cached_property
    def sender(self) -> mail_headers.Mailbox:
        """MAIL_FROM, checked (config.validate checked it at start already)."""
        return mail_headers.parse_mailbox(self.mail_from)

    @property
    def domain(self) -> str:
        return self.sender.domain

    @classmethod
    def from_settings(cls, settings: Settings, dkim: Dkim | None = None) -> MailSite:
        return cls(
            base_url=settings.public_base_url,
            mail_from=settings.mail_from,
            site_name=settings.site_name,
            list_id=settings.list_id,
            dkim=dkim,
            zone=settings.zone,
        )

    def signed(self, message: bytes) -> bytes:
        """`message` (CRLF line ends) with a DKIM-Signature header first when a key is set
        (RFC 6376, relaxed/simple as dkimpy signs by default); unchanged otherwise."""
        if self.dkim is None:
            return message
        return dkim_sign(message, self.dkim) + message


def dkim_sign(message: bytes, key: Dkim) -> bytes:
    """The DKIM-Signature header line(s) for `message`, CRLF-terminated."""
    import dkim  # only a deployment with a key loads dkimpy

    return dkim.sign(
        message,
        key.selector,
        key.domain,
        key.private_key,
        include_headers=DKIM_HEADERS,
        linesep=CRLF,
    )
