"""A release's email, composed once per language; per recipient only a few bytes change.

Building an EmailMessage from scratch for every reader costs more than sending it, so the MIME
skeleton and the rendered bodies are made once, with placeholders for the reader's own links,
and each message is assembled by filling those in and quoted-printable encoding the bodies.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import TYPE_CHECKING

from babel.dates import format_date

from service.domain import mail_headers, mime, plain_text
from service.domain.emails import EmailRenderer, RenderedEmail
from service.domain.mail_site import MailSite
from service.domain.mime import lines_of, qp_lines
from service.domain.tokens import Purpose, TokenSigner
from service.locales import babel_locale
from service.models import Release

if TYPE_CHECKING:
    from service.domain.corrections import OriginalCopy

CRLF = b"\r\n"
_UNSUBSCRIBE = "PRESSROOM-UNSUBSCRIBE-URL-9f2c"
_PREFERENCES = "PRESSROOM-PREFERENCES-URL-9f2c"


_RELEASE_MESSAGE_ID = re.compile(r"<release-(\d{1,12})\.([0-9a-f]{24})@[^<>\s]+>")


def reader_digest(release_id: int | None, subscriber_uid: str) -> str:
    """What a release's Message-ID says of the reader: enough to check a guess, no more."""
    return hashlib.sha256(f"{release_id}:{subscriber_uid}".encode()).hexdigest()[:24]


def feedback_id(release_id: int | None, language: str, site: MailSite) -> str:
    """Gmail's Feedback Loop identifier, `<release>:<language>:pressroom:<site>` (Google's
    "Feedback Loop" help page: up to three identifiers, then a constant sender id; DKIM-signed,
    mail_site.DKIM_HEADERS): Postmaster Tools then report spam rates per release and
    language. `site` is the LIST_ID, the one name of this site's list."""
    return f"{release_id or 'preview'}:{language}:pressroom:{site.list_id}"


def delivery_message_id(release_id: int | None, subscriber_uid: str, domain: str) -> str:
    return f"<release-{release_id}.{reader_digest(release_id, subscriber_uid)}@{domain}>"


def release_of(message_id: str | None, subscriber_uid: str) -> int | None:
    """The release whose copy to this reader carried `message_id` (ReleaseMessage.message_id),
    or None when the ID is not such a copy's."""
    match = _RELEASE_MESSAGE_ID.fullmatch((message_id or "").strip())
    if match is None:
        return None
    release_id = int(match.group(1))
    return release_id if reader_digest(release_id, subscriber_uid) == match.group(2) else None


class _EncodedBody:
    """A body quoted-printable encoded once, but for the lines holding a reader's own links.

    Quoted-printable works line by line, so the lines without a placeholder are encoded here,
    once per release, and only the one or two lines with a link are encoded per reader.
    """

    def __init__(self, text: str) -> None:
        self._pieces: list[bytes | str] = []
        plain: list[str] = []
        for line in lines_of(text).split("\n"):
            if _UNSUBSCRIBE in line or _PREFERENCES in line:
                if plain:
                    self._pieces.append(qp_lines("\n".join(plain)))
                    plain = []
                self._pieces.append(line)
            else:
                plain.append(line)
        if plain:
            self._pieces.append(qp_lines("\n".join(plain)))

    def fill(self, unsubscribe: str, preferences: str) -> bytes:
        return CRLF.join(
            piece
            if isinstance(piece, bytes)
            else qp_lines(
                piece.replace(_UNSUBSCRIBE, unsubscribe).replace(_PREFERENCES, preferences)
            )
            for piece in self._pieces
        )


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
        # The day in TIMEZONE, as the release's page dates it (web/l10n.format_date).
        published = (release.published_at or now).astimezone(site.zone).date()
        # A correction names what it corrects, in the reader's language where it can.
        original = release.corrects if release.corrects_id is not None else None
        original_version = (
            (original.version(language) or original.version(original.language))
            if original is not None
            else None
        )
        rendered = renderer.render(
            "release/release",
            language,
            site_name=site.site_name,
            title=version["title"],
            summary=version["summary"],
            body_html=version["body_html"],
            # The text part: Markdown as a person would type it (plain_text), wrapped.
            title_text=plain_text.underline(version["title"], "="),
            summary_text=plain_text.wrap_text(version["summary"]),
            body_text=plain_text.markdown_to_text(version["body"]),
            date=format_date(published, format="long", locale=babel_locale(language)),
            release_url=f"{site.base_url}/releases/{release.slug}?lang={language}",
            unsubscribe_url=_UNSUBSCRIBE,
            preferences_url=_PREFERENCES,
            test=test,
            corrects_title=original_version["title"] if original_version else None,
            corrects_url=(
                f"{site.base_url}/releases/{original.slug}?lang={language}" if original else None
            ),
        )
        self._assemble(signer, site, release.id, language, rendered, now=now, test=test)

    def _assemble(
        self,
        signer: TokenSigner,
        site: MailSite,
        release_id: int | None,
        language: str,
        rendered: RenderedEmail,
        *,
        now: datetime,
        test: bool = False,
    ) -> None:
        """The parts every reader's copy shares, from the rendered email: the head, the two
        bodies with placeholders for the reader's links, the MIME boundaries. `release_id`
        names the release (or digest run) in Message-IDs, links and Feedback-ID."""
        self._release_id = release_id
        self._test = test
        self._signer = signer
        self._site = site
        self._text = _EncodedBody(rendered.text)
        self._html = _EncodedBody(rendered.html)
        boundary = mime.new_boundary()
        subject = f"[TEST] {rendered.subject}" if test else rendered.subject
        # Every line through mail_headers: no typed text is ever written as it came.
        self._head = b"".join(
            [
                mail_headers.mailbox("From", site.sender),
                mail_headers.unstructured("Subject", subject),
                mail_headers.date("Date", now),
                mail_headers.list_id("List-Id", site.site_name, site.list_id),
                mail_headers.structured("Feedback-ID", feedback_id(release_id, language, site)),
                mail_headers.structured("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                mail_headers.unstructured("X-Pressroom-Test", "yes") if test else b"",
                mime.alternative_headers(boundary),
            ]
        )
        self._part_text = mime.part_head(boundary, "plain")
        self._part_html = CRLF + mime.part_head(boundary, "html")
        self._close = CRLF + mime.close(boundary)

    def message_id(self, subscriber_uid: str) -> str:
        """A reader's delivery of this release: unique per reader and stable across retries,
        so a resend is recognisable (CONTRACT.md, crash-safe exactly-once)."""
        return delivery_message_id(self._release_id, subscriber_uid, self._site.domain)

    def unsubscribe_url(self, subscriber_uid: str) -> str:
        """The reader's own link; it names this release, so that a reader who leaves through
        it is counted against the release (the desk's charts)."""
        payload: dict[str, object] = {"u": subscriber_uid}
        if self._release_id is not None:
            payload["r"] = self._release_id
        token = self._signer.dumps(Purpose.UNSUBSCRIBE, payload)
        return f"{self._site.base_url}/unsubscribe/{token}"

    def for_recipient(
        self,
        email: str,
        subscriber_uid: str,
        *,
        message_id: str | None = None,
        original: OriginalCopy | None = None,
    ) -> bytes:
        """The whole message for one reader, DKIM-signed when a key is set; HeaderError when
        `email` is not a plain addr-spec (mail_headers.check_addr_spec).

        `message_id`: None for a reader's delivery of the release (`self.message_id`, stable
        across retries). A message that is no such delivery (a test copy, a preview) passes
        one of its own from mail_headers.new_msg_id; a test copy without one gets a new ID.

        `original`: for a correction, the email in which this reader got the original
        (corrections.copies_to); the message replies to it, In-Reply-To and References
        naming its Message-ID as sent to this reader (RFC 5322 §3.6.4), so mail clients
        put the two in one thread.
        """
        if message_id is None:
            message_id = (
                mail_headers.new_msg_id(self._site.domain)
                if self._test
                else self.message_id(subscriber_uid)
            )
        unsubscribe = self.unsubscribe_url(subscriber_uid)
        preferences = f"{self._site.base_url}/preferences/" + self._signer.dumps(
            Purpose.PREFERENCES, {"u": subscriber_uid}
        )
        thread = b""
        if original is not None:
            parent = original.message_id(subscriber_uid, self._site.domain)
            thread = mail_headers.message_id("In-Reply-To", parent) + mail_headers.message_id(
                "References", parent
            )
        message = b"".join(
            [
                mail_headers.address("To", email),
                mail_headers.message_id("Message-ID", message_id),
                thread,
                mail_headers.uris("List-Unsubscribe", unsubscribe),
                self._head,
                CRLF,
                self._part_text,
                self._text.fill(unsubscribe, preferences),
                self._part_html,
                self._html.fill(unsubscribe, preferences),
                self._close,
            ]
        )
        return self._site.signed(message)
