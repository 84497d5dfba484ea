"""What the subscribe form and the subscriptions API share: parsing, rate limits, follow-up."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from flask import Flask, request
from flask_babel import get_locale
from flask_limiter import Limiter
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service import dispatch
from service.app_state import session_scope, settings
from service.db import utcnow
from service.domain import digests, owed_notices, subscriptions
from service.domain.addresses import lookup_address, normalize_address, trim_address
from service.extensions import client_ip
from service.locales import PRIMARY_LANGUAGE
from service.models import ConsentChannel, ConsentSource, OwedNotice
from service.web import consent_wording
from service.web.idempotency import ANYONE, is_replay

log = logging.getLogger(__name__)
InTransaction = Callable[[Session], None] | None

HONEYPOT_FIELD = "website"
SIGNUP_SCOPE = "signup"
ADDRESS_SCOPE = "signup-address"
SIGNUP_ENDPOINTS = ("public.subscribe", "api.create_subscription")


def signup_limit() -> str:
    return settings().signup_rate_limit


def address_limit() -> str:
    return settings().address_rate_limit


def address_limit_key() -> str:
    """Rate-limit key for the address being signed up, from the form or the JSON body."""
    if request.is_json:
        body = request.get_json(silent=True)
        raw = body.get("email") if isinstance(body, dict) else None
    else:
        raw = request.form.get("email")
    if not isinstance(raw, str):
        return "address:none"
    # One key per mailbox however it is typed (Ola@Blåbær.no, ola@xn--blbr-roah.no): the
    # stored form where it is an address. A digest: whatever was sent (even a lone surrogate
    # from JSON) makes a valid Redis key, and Redis never holds the addresses themselves.
    address = lookup_address(raw) or trim_address(raw).lower()
    typed = address.encode("utf-8", "surrogatepass")
    return "address:" + hashlib.sha256(typed).hexdigest()


def limit_signups(app: Flask) -> Limiter:
    """Per-IP and per-address limits on every way in: the form and the API share both."""
    limiter = Limiter(key_func=client_ip, app=app)
    app.extensions["pressroom.limiter"] = limiter
    per_ip = limiter.shared_limit(signup_limit, scope=SIGNUP_SCOPE, exempt_when=_replay)
    per_address = limiter.shared_limit(
        address_limit, scope=ADDRESS_SCOPE, key_func=address_limit_key, exempt_when=_replay
    )
    for endpoint in SIGNUP_ENDPOINTS:
        app.view_functions[endpoint] = per_ip(per_address(app.view_functions[endpoint]))
    return limiter


def _replay() -> bool:
    """A retry with the Idempotency-Key of a signup already answered gets that answer again
    and signs nobody up: it is not one more signup."""
    return request.is_json and is_replay(ANYONE)


def build_signup(
    *,
    email: object,
    language: object,
    topics: object,
    source: ConsentSource,
    frequency: object = None,
) -> subscriptions.Signup:
    """The signup as the domain takes it. A form signup carries the consent text the form
    showed, in the form's language; the API's callers show their own, which is not ours to
    record. `frequency`: "immediately", "daily" or "weekly"; none or "": immediately."""
    config = settings()
    chosen = subscriptions.parse_language(language, default=str(get_locale() or PRIMARY_LANGUAGE))
    who = consent_wording.origin(ConsentChannel(source.value))
    return subscriptions.Signup(
        email=normalize_address(email, check_deliverability=config.check_deliverability),
        language=chosen,
        topics=subscriptions.parse_topics(topics, config.topics),
        source=source,
        consent_text_version=config.consent_text_version,
        ip=who.ip,
        user_agent=who.user_agent,
        frequency=digests.parse_frequency(frequency),
        wording=(
            consent_wording.wording(consent_wording.Consent.SIGNUP, chosen)
            if source is ConsentSource.FORM
            else None
        ),
    )


NOTICE_TASKS = {
    OwedNotice.CONFIRMATION: dispatch.TaskName.SEND_CONFIRMATION,
    OwedNotice.ALREADY_SUBSCRIBED: dispatch.TaskName.SEND_ALREADY_SUBSCRIBED,
    OwedNotice.WELCOME: dispatch.TaskName.SEND_WELCOME,
}


def record_signup(signup: subscriptions.Signup, *, in_transaction: InTransaction = None) -> None:
    """Record the signup and the one email it calls for, then (once committed) ring for it.

    `in_transaction(session)` runs last inside the signup's transaction (an idempotency key's
    answer is stored there). The email is recorded as owed in that transaction, so a broker
    outage after the commit delays it (the sweep rings again) and "check your inbox" holds.
    """
    with session_scope() as session:
        outcome = subscriptions.subscribe(session, signup, now=utcnow())
        if in_transaction is not None:
            in_transaction(session)
    if outcome.owed is not None:
        ring_owed(outcome.owed)


def ring_owed(owed: owed_notices.Owed) -> None:
    """Hand a committed, owed notice to the queue and settle its record; a broker outage
    leaves the record for the sweep (logged, never an error answer)."""
    if not dispatch.ring(NOTICE_TASKS[owed.notice], owed.subscriber_uid):
        return
    try:
        with session_scope() as session:
            owed_notices.settle(session, owed)
    except SQLAlchemyError as error:  # the sweep rings again: at worst a second notice
        log.warning("owed notice not settled: %s", error.__class__.__name__)
