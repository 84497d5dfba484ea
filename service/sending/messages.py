"""A release's email, the one way it is built: for every reader's copy (the worker), the desk's
preview and the test copy to press staff alike.

`Composer` holds what a message is made of (the templates, the token signer, the site's mail
identity and DKIM key); `ReleaseMessage` (domain.release_messages) is one release in one
language, composed once and then addressed to each reader for a few bytes each.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from service.db import utcnow
from service.domain.corrections import CopyKind, OriginalCopy
from service.domain.digest_messages import DigestMessages, Listed
from service.domain.emails import EmailRenderer
from service.domain.mail_headers import new_msg_id
from service.domain.mail_site import MailSite
from service.domain.notices import NoticeContext
from service.domain.release_messages import ReleaseMessage
from service.domain.tokens import TokenSigner
from service.models import Release

CACHED_MESSAGES = 16  # per thread: releases and languages sent side by side, with room to spare


@dataclass(frozen=True)
class Composer:
    renderer: EmailRenderer
    signer: TokenSigner
    site: MailSite

    @classmethod
    def from_extensions(cls, extensions: Mapping[str, Any]) -> Composer:
        """From the app's extensions (service.create_app): settings, emails, signer, dkim."""
        return cls(
            extensions["pressroom.emails"],
            extensions["pressroom.signer"],
            MailSite.from_settings(
                extensions["pressroom.settings"], extensions.get("pressroom.dkim")
            ),
        )

    @property
    def notices(self) -> NoticeContext:
        """What the notices (confirmation, welcome, invitations) are made of: the same
        templates, signer and site (and so the same DKIM key) as the releases."""
        return NoticeContext(self.renderer, self.signer, self.site)

    def release_message(
        self, release: Release, language: str, *, now: datetime, test: bool = False
    ) -> ReleaseMessage:
        """`test`: a copy for press staff, marked as such. HeaderError when the release
        holds text no header may carry."""
        return ReleaseMessage(
            self.renderer, self.signer, self.site, release, language, now=now, test=test
        )

    def digest_messages(
        self, run: Release, language: str, listings: Mapping[str, Sequence[Listed]]
    ) -> DigestMessages:
        """A digest run's messages in `language` for the readers of one batch (by uid)."""
        return DigestMessages(
            self.renderer, self.signer, self.site, run, language, listings, now=utcnow()
        )

    def test_copy(
        self,
        release: Release,
        language: str,
        email: str,
        publisher_id: int,
        *,
        now: datetime,
        key: str | None,
    ) -> bytes:
        """The test copy to a publisher: marked as a test, its own Message-ID (Gmail folds
        repeats of one), the same for every retry of one task (`key`)."""
        return self.release_message(release, language, now=now, test=True).for_recipient(
            email,
            f"test-{publisher_id}",
            message_id=new_msg_id(self.site.domain, key=key),
            original=_example_copy(release),
        )

    def preview(
        self, release: Release, language: str, email: str, publisher_id: int, *, now: datetime
    ) -> bytes:
        """The reader's copy addressed to the signed-in publisher, unsigned (no key is spent
        on a page) and with an ID of its own: a preview is no reader's delivery."""
        unsigned = Composer(self.renderer, self.signer, replace(self.site, dkim=None))
        return unsigned.release_message(release, language, now=now).for_recipient(
            email,
            f"preview-{publisher_id}",
            message_id=new_msg_id(self.site.domain),
            original=_example_copy(release),
        )


def _example_copy(release: Release) -> OriginalCopy | None:
    """A correction's preview and test copy reply to the original as a reader's copy would:
    the headers are there to see, naming a message the publisher never got."""
    if release.corrects_id is None:
        return None
    return OriginalCopy(CopyKind.RELEASE, release.corrects_id)


class MessageCache:
    """Messages composed once per release, language and edit, then reused for every batch.

    One per thread: with --pool=threads (or gevent) tasks run side by side in one process, and
    a cache being refilled cannot be shared between two of them."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(
        self, composer: Composer, release: Release, language: str, *, now: Callable[[], datetime]
    ) -> ReleaseMessage:
        key = (release.id, language, release.updated_at, composer.site)
        messages: dict[Any, ReleaseMessage] | None = getattr(self._local, "messages", None)
        if messages is None:
            messages = self._local.messages = {}
        if key not in messages:
            if len(messages) > CACHED_MESSAGES:
                messages.clear()
            messages[key] = composer.release_message(release, language, now=now())
        return messages[key]
