"""What the subscribe form and the subscriptions API share: parsing, rate limits, follow-up."""

from __future__ import annotations

import hashlib

from flask import Flask, current_app, request
from flask_babel import get_locale
from flask_limiter import Limiter

from service import dispatch
from service.config import Settings
from service.db import session_scope, utcnow
from service.domain import subscriptions
from service.domain.addresses import normalize_address
from service.extensions import client_ip
from service.models import ConsentSource

HONEYPOT_FIELD = "website"
SIGNUP_SCOPE = "signup"
ADDRESS_SCOPE = "signup-address"
SIGNUP_ENDPOINTS = ("public.subscribe", "api.create_subscription")


def settings() -> Settings:
    return current_app.extensions["pressroom.settings"]


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
    # A digest: whatever was sent (even a lone surrogate from JSON) makes a valid Redis key,
    # and Redis never holds the addresses themselves.
    typed = raw.strip().lower().encode("utf-8", "surrogatepass")
    return "address:" + hashlib.sha256(typed).hexdigest()


def limit_signups(app: Flask) -> Limiter:
    """Per-IP and per-address limits on every way in: the form and the API share both."""
    limiter = Limiter(key_func=client_ip, app=app)
    app.extensions["pressroom.limiter"] = limiter
    per_ip = limiter.shared_limit(signup_limit, scope=SIGNUP_SCOPE)
    per_address = limiter.shared_limit(
        address_limit, scope=ADDRESS_SCOPE, key_func=address_limit_key
    )
    for endpoint in SIGNUP_ENDPOINTS:
        app.view_functions[endpoint] = per_ip(per_address(app.view_functions[endpoint]))
    return limiter


def build_signup(
    *, email: object, language: object, topics: object, source: ConsentSource
) -> subscriptions.Signup:
    config = settings()
    return subscriptions.Signup(
        email=normalize_address(email, check_deliverability=config.check_deliverability),
        language=subscriptions.parse_language(language, default=str(get_locale() or "nb")),
        topics=subscriptions.parse_topics(topics, config.topics),
        source=source,
        consent_text_version=config.consent_text_version,
        ip=request.remote_addr,
        user_agent=request.user_agent.string or None,
    )


def record_signup(signup: subscriptions.Signup) -> None:
    """Record the signup, then, once committed, send the one email it calls for."""
    with session_scope() as session:
        outcome = subscriptions.subscribe(session, signup, now=utcnow())
    if outcome.follow_up is subscriptions.FollowUp.CONFIRM:
        dispatch.enqueue(dispatch.TaskName.SEND_CONFIRMATION, outcome.subscriber_uid)
    elif outcome.follow_up is subscriptions.FollowUp.ALREADY_SUBSCRIBED:
        dispatch.enqueue(dispatch.TaskName.SEND_ALREADY_SUBSCRIBED, outcome.subscriber_uid)
