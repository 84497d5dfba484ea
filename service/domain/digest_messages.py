"""A digest's email: one per reader, listing the releases held for them, newest first.

Readers who chose the same topics and language are owed the same list, so a digest is
composed once per distinct list (`DigestMessages`), and addressed to each reader for a few
bytes each, as a release is (release_messages.ReleaseMessage).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from babel.dates import format_date

from service.domain import plain_text
from service.domain.corrections import OriginalCopy
from service.domain.emails import EmailRenderer
from service.domain.mail_site import MailSite
from service.domain.release_messages import (
    _PREFERENCES,
    _UNSUBSCRIBE,
    ReleaseMessage,
)
from service.domain.tokens import TokenSigner
from service.locales import babel_locale
from service.models import Frequency, Release


@dataclass(frozen=True)
class Listed:
    """A release as one reader's digest lists it, in the language version they get."""

    release_id: int
    slug: str
    language: str  # the version listed (the reader's, or the primary one standing in)
    title: str
    summary: str
    published_at: datetime
    correction: bool = False  # it corrects an earlier release


class DigestMessage(ReleaseMessage):
    """One digest run's list of releases in one language, ready to be addressed to any
    reader owed exactly that list. Its Message-ID, List-Unsubscribe and Feedback-ID name the
    digest run as a release's name the release: bounces and complaints count against it."""

    def __init__(
        self,
        renderer: EmailRenderer,
        signer: TokenSigner,
        site: MailSite,
        run: Release,
        language: str,
        listed: Sequence[Listed],
        *,
        now: datetime,
    ) -> None:
        locale = babel_locale(language)
        weekly = run.digest_frequency == Frequency.WEEKLY.value
        entries = [
            {
                "title": entry.title,
                "title_text": plain_text.underline(entry.title, "-"),
                "summary": entry.summary,
                "correction": entry.correction,
                "summary_text": plain_text.wrap_text(entry.summary),
                "date": format_date(
                    entry.published_at.astimezone(site.zone).date(), format="long", locale=locale
                ),
                "url": f"{site.base_url}/releases/{entry.slug}?lang={entry.language}",
            }
            for entry in listed
        ]
        day = format_date((run.digest_due_at or now).astimezone(site.zone).date(), "long", locale)
        rendered = renderer.render(
            "digest/digest",
            language,
            site_name=site.site_name,
            weekly=weekly,
            count=len(listed),
            day=day,
            entries=entries,
            unsubscribe_url=_UNSUBSCRIBE,
            preferences_url=_PREFERENCES,
        )
        self._assemble(signer, site, run.id, language, rendered, now=now)


class DigestMessages:
    """A digest run's messages in one language, for the readers of one batch: `listings`
    maps each reader's uid to the releases their digest lists, newest first."""

    def __init__(
        self,
        renderer: EmailRenderer,
        signer: TokenSigner,
        site: MailSite,
        run: Release,
        language: str,
        listings: Mapping[str, Sequence[Listed]],
        *,
        now: datetime,
    ) -> None:
        self._parts = (renderer, signer, site, run, language)
        self._listings = listings
        self._now = now
        self._composed: dict[tuple[tuple[int, str], ...], DigestMessage] = {}

    def for_recipient(
        self, email: str, subscriber_uid: str, *, original: OriginalCopy | None = None
    ) -> bytes:
        """The reader's digest (ReleaseMessage.for_recipient); KeyError for a reader this
        batch holds no list for (the ledger skips those before they reach a batch).
        `original` is always None: a digest replies to nothing (a correction it lists
        follows its original in a digest, or was emailed at once and threaded)."""
        listed = self._listings[subscriber_uid]
        key = tuple((entry.release_id, entry.language) for entry in listed)
        message = self._composed.get(key)
        if message is None:
            message = self._composed[key] = DigestMessage(*self._parts, listed, now=self._now)
        return message.for_recipient(email, subscriber_uid)
