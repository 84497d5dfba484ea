"""The consent texts readers are shown, rendered once for the page and once for the ledger.

Each wording is a few translated paragraphs. The page shows them in its language; the consent
ledger keeps the SHA-256 of exactly those paragraphs (joined by a newline) in the language the
act was done in, so what a reader agreed to can be read back word for word. None of them holds
anything personal: the text is kept once per hash and outlives every erasure.
"""

from __future__ import annotations

import enum

from flask import request
from flask_babel import force_locale, get_locale
from flask_babel import lazy_gettext as _l

from service.app_state import settings
from service.domain.consent_ledger import Origin, Wording
from service.locales import PRIMARY_LANGUAGE
from service.models import ConsentChannel


class Consent(enum.StrEnum):
    SIGNUP = "signup"
    CONFIRM = "confirm"
    UNDO = "undo"


WORDINGS = {
    Consent.SIGNUP: (
        _l(
            "Register your email address to get our newest releases by email, as they are "
            "published."
        ),
        _l("You can unsubscribe at any time."),
        _l("We send you an email to confirm. No releases are sent until you confirm."),
    ),
    Consent.CONFIRM: (
        _l("Press the button to receive our new releases by email at this address."),
        _l("You can unsubscribe at any time."),
    ),
    Consent.UNDO: (
        _l(
            "You can take the unsubscribe back for 24 hours: you keep your language and topics, "
            "and need not confirm again."
        ),
        _l("That was a mistake: keep me subscribed"),
    ),
}


def paragraphs(consent: Consent) -> list[str]:
    """The wording's paragraphs in the page's language, as the templates show them."""
    return [str(part) for part in WORDINGS[consent]]


def wording(consent: Consent, language: str | None = None) -> Wording:
    """The wording as shown in `language` (the page's when None), for the ledger."""
    language = language or str(get_locale() or PRIMARY_LANGUAGE)
    with force_locale(language):
        return Wording(language=language, text="\n".join(paragraphs(consent)))


def origin(source: ConsentChannel) -> Origin:
    """Who is asking: the request's IP cut to CONSENT_IP_PRECISION, and its user agent."""
    return Origin(
        source=source,
        ip=settings().ip_precision.truncate(request.remote_addr),
        user_agent=request.user_agent.string or None,
    )
