"""A release's email, composed once per language; per recipient only a few bytes change.

Building an EmailMessage from scratch for every reader costs more than sending it, so the MIME
skeleton and the rendered bodies are made once, with placeholders for the reader's own links,
and each message is assembled by filling those in and quoted-printable encoding the bodies.
"""

from __future__ import annotations

import binascii
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from babel.dates import format_date

from service.config import Settings
from service.domain.emails import EmailRenderer
from service.domain.tokens import Purpose, TokenSigner
from service.models import Release

CRLF = b"\r\n"
BABEL_LOCALES = {"nb": "nb_NO", "en": "en_GB"}
_UNSUBSCRIBE = "PRESSROOM-UNSUBSCRIBE-URL-9f2c"
_PREFERENCES = "PRESSROOM-PREFERENCES-URL-9f2c"


@dataclass(frozen=True)
class Dkim:
    selector: bytes
    domain: bytes
    private_key: bytes


@dataclass(frozen=True)
class MailSite:
    base_url: str
    mail_from: str
    site_name: str
    list_id: str
    dkim: Dkim | None = None

    @property
    def domain(self) -> str:
        address = self.mail_from.rsplit("<", 1)[-1].rstrip(">").strip()
        return address.rsplit("@", 1)[-1] or "localhost"

    @classmethod
    def from_settings(cls, settings: Settings, dkim: Dkim | None = None) -> MailSite:
        return cls(
            base_url=settings.public_base_url,
            mail_from=settings.mail_from,
            site_name=settings.site_name,
            list_id=settings.list_id,
            dkim=dkim,
        )


DKIM_HEADERS = [
    b"from", b"to", b"subject", b"date", b"message-id",
    b"list-id", b"list-unsubscribe", b"list-unsubscribe-post",
]  # fmt: skip


def _qp(text: str) -> bytes:
    data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    return binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)


class _EncodedBody:
    """A body quoted-printable encoded once, but for the lines holding a reader's own links.

    Quoted-printable works line by line, so the lines without a placeholder are encoded here,
    once per release, and only the one or two lines with a link are encoded per reader.
    """

    def __init__(self, text: str) -> None:
        self._pieces: list[bytes | str] = []
        plain: list[str] = []
        for line in text.replace("\r\n", "\n").split("\n"):
            if _UNSUBSCRIBE in line or _PREFERENCES in line:
                if plain:
                    self._pieces.append(_qp_lines("\n".join(plain)))
                    plain = []
                self._pieces.append(line)
            else:
                plain.append(line)
        if plain:
            self._pieces.append(_qp_lines("\n".join(plain)))

    def fill(self, unsubscribe: str, preferences: str) -> bytes:
        return CRLF.join(
            piece
            if isinstance(piece, bytes)
            else _qp_lines(
                piece.replace(_UNSUBSCRIBE, unsubscribe).replace(_PREFERENCES, preferences)
            )
            for piece in self._pieces
        )


def _qp_lines(text: str) -> bytes:
    # Encoded with a line break after it, so that soft breaks come out as CRLF too.
    return _qp(text + "\n")[: -len(CRLF)]


class ReleaseMessage:
    """One release in one language, ready to be addressed to any reader."""

    def __init__(
        self,
        renderer: EmailRenderer,
        signer: TokenSigner,
        site: MailSite,
        release: Release,
        language: str,
        *,
        now: datetime,
        test: bool = False,
    ) -> None:
        """`test`: a copy for press staff, marked as such in its subject, body and headers."""
        version = release.version(language) or release.version(release.language)
        assert version is not None
        self._release_id = release.id
        self._signer = signer
        self._site = site
        published = release.published_at or now
        rendered = renderer.render(
            "release/release",
            language,
            site_name=site.site_name,
            title=version["title"],
            summary=version["summary"],
            body=version["body"],
            body_html=version["body_html"],
            date=format_date(
                published, format="long", locale="nb_NO" if language == "nb" else "en"
            ),
            release_url=f"{site.base_url}/releases/{release.slug}?lang={language}",
            unsubscribe_url=_UNSUBSCRIBE,
            preferences_url=_PREFERENCES,
            test=test,
        )
        self._text = _EncodedBody(rendered.text)
        self._html = _EncodedBody(rendered.html)
        self._boundary = ("==pressroom-" + uuid.uuid4().hex).encode()
        head = EmailMessage(policy=SMTP)
        head["From"] = site.mail_from
        head["Subject"] = f"[TEST] {rendered.subject}" if test else rendered.subject
        head["Date"] = format_datetime(now)
        head["List-Id"] = f"{site.site_name} <{site.list_id}>"
        head["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        if test:
            head["X-Pressroom-Test"] = "yes"
        head["MIME-Version"] = "1.0"
        head["Content-Type"] = f'multipart/alternative; boundary="{self._boundary.decode()}"'
        self._head = b"".join(SMTP.fold_binary(name, value) for name, value in head.items())
        self._part_text = (
            b"--" + self._boundary + CRLF
            + b"Content-Type: text/plain; charset=utf-8" + CRLF
            + b"Content-Transfer-Encoding: quoted-printable" + CRLF + CRLF
        )  # fmt: skip
        self._part_html = (
            CRLF + b"--" + self._boundary + CRLF
            + b"Content-Type: text/html; charset=utf-8" + CRLF
            + b"Content-Transfer-Encoding: quoted-printable" + CRLF + CRLF
        )  # fmt: skip
        self._close = CRLF + b"--" + self._boundary + b"--" + CRLF

    def message_id(self, subscriber_uid: str) -> str:
        """Unique per reader and stable across retries, so a resend is recognisable."""
        digest = hashlib.sha256(f"{self._release_id}:{subscriber_uid}".encode()).hexdigest()[:24]
        return f"<release-{self._release_id}.{digest}@{self._site.domain}>"

    def unsubscribe_url(self, subscriber_uid: str) -> str:
        """The reader's own link; it names this release, so that a reader who leaves through
        it is counted against the release (the desk's charts)."""
        payload: dict[str, object] = {"u": subscriber_uid}
        if self._release_id is not None:
            payload["r"] = self._release_id
        token = self._signer.dumps(Purpose.UNSUBSCRIBE, payload)
        return f"{self._site.base_url}/unsubscribe/{token}"

    def for_recipient(self, email: str, subscriber_uid: str) -> bytes:
        unsubscribe = self.unsubscribe_url(subscriber_uid)
        preferences = f"{self._site.base_url}/preferences/" + self._signer.dumps(
            Purpose.PREFERENCES, {"u": subscriber_uid}
        )
        message = b"".join(
            [
                b"To: " + email.encode("ascii") + CRLF,
                b"Message-ID: " + self.message_id(subscriber_uid).encode() + CRLF,
                b"List-Unsubscribe: <" + unsubscribe.encode() + b">" + CRLF,
                self._head,
                CRLF,
                self._part_text,
                self._text.fill(unsubscribe, preferences),
                self._part_html,
                self._html.fill(unsubscribe, preferences),
                self._close,
            ]
        )
        if self._site.dkim is not None:
            message = _dkim_sign(message, self._site.dkim) + message
        return message


def _dkim_sign(message: bytes, key: Dkim) -> bytes:
    import dkim

    return dkim.sign(
        message,
        key.selector,
        key.domain,
        key.private_key,
        include_headers=DKIM_HEADERS,
        linesep=CRLF,
    )
