"""`POST /api/v1/webhooks/<provider>`: bounce and complaint events from a mail provider
(domain.webhooks), each verified by the provider's own signature scheme, then taken by the one
policy (domain.bounce_policy). 200 only for a post that verified and was taken; a post that
does not verify (401), is not JSON or not the provider's shape (400), is too large (413), or
was taken before (409) records nothing.
"""

from __future__ import annotations

import hashlib
import urllib.request
from typing import Any

from flask import Response, current_app, jsonify, request
from flask_smorest import Blueprint
from werkzeug.exceptions import NotFound, RequestEntityTooLarge

from service.app_state import session_scope, settings
from service.db import utcnow
from service.domain import bounce_policy, incoming_reports, send_guards
from service.domain.errors import N_, DomainError, ErrorKind
from service.domain.webhooks import PROVIDERS, Post, Replayed, WebhookSetup
from service.extensions import csrf
from service.redis_clients import app_redis
from service.sending import meters
from service.sending.envelope import EnvelopeSenders
from service.web import openapi as doc

bp = Blueprint("webhooks", __name__, url_prefix="/api/v1", description="Bounces and complaints in")
csrf.exempt(bp)  # signed by the provider, not a form

MAX_WEBHOOK_BYTES = 1024 * 1024  # SendGrid batches events; SES bodies are a few KB
REMEMBERED_SECONDS = 7 * 24 * 3600  # a replay of a signed post is refused this long
FETCH_TIMEOUT = 10.0  # seconds, for an SNS certificate or subscription confirmation


def fetch(url: str) -> bytes:
    """GET an https URL (SNS signing certificates and subscription confirmations only: the
    callers check the host first)."""
    with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT) as answer:
        return answer.read(256 * 1024)


def setup() -> WebhookSetup:
    config = settings()
    return WebhookSetup(
        generic=config.webhook_secret,
        mailgun=config.mailgun_webhook_signing_key,
        sendgrid=config.sendgrid_webhook_public_key,
        ses_topics=config.ses_sns_topic_arns,
        fetch=current_app.extensions.get("pressroom.webhook_fetch", fetch),
    )


@bp.post("/webhooks/<string:provider>")
@bp.doc(
    summary="Take bounce and complaint events from a mail provider",
    description=(
        "`provider` is ses (through SNS: subscription confirmations too), postmark (HTTP "
        "Basic auth with WEBHOOK_SECRET as the password), mailgun (HTTP webhook signing key), "
        "sendgrid (signed Event Webhook) or generic (X-Pressroom-Signature: sha256=<hex "
        "HMAC-SHA256 of the body with WEBHOOK_SECRET>). Each post is checked by its provider's "
        "signature and taken once; a body over 1 MiB answers 413."
    ),
    requestBody={
        "required": True,
        "content": {"application/json": {"schema": {}}, "text/plain": {"schema": {}}},
    },
    security=[],
)
@bp.alt_response(200, schema=doc.WebhookTaken, description="Verified and taken")
@bp.alt_response(400, schema=doc.Error, description="Not JSON, or not the provider's shape")
@bp.alt_response(401, schema=doc.Error, description="Not signed by the provider")
@bp.alt_response(404, schema=doc.Error, description="No such provider, or not set up")
@bp.alt_response(409, schema=doc.Error, description="Taken before (a replay)")
@bp.alt_response(413, schema=doc.Error, description="Body over 1 MiB")
@bp.alt_response(503, schema=doc.Error, description="SNS subscription not confirmed; again")
def receive(provider: str) -> Response:
    reader = PROVIDERS.get(provider)
    if reader is None:
        raise NotFound()
    request.max_content_length = MAX_WEBHOOK_BYTES  # before the body is read
    body = _body()
    config = settings()
    envelope = EnvelopeSenders.from_settings(config)
    now = utcnow()
    webhook_setup = setup()
    posted = reader(Post(dict(request.headers), body), webhook_setup, envelope.verp, now)
    seen = _seen_key(provider, posted.replay_key)
    redis = app_redis()
    if seen and redis.exists(seen):
        raise Replayed()
    limits = send_guards.Limits.from_settings(config)
    with session_scope() as session:
        taken = [bounce_policy.take(session, report, now=now) for report in posted.reports]
        incoming_reports.guard_releases(session, taken, limits)
    meters.count_reports(taken)
    answer: dict[str, Any] = {
        "taken": sum(1 for t in taken if t.outcome is not None),
        "repeats": sum(1 for t in taken if t.repeat),
        "ignored": sum(1 for t in taken if t.kind is None),
    }
    if posted.confirm_url:
        try:
            webhook_setup.fetch(posted.confirm_url)
        except OSError:
            raise NotConfirmed() from None  # SNS posts the confirmation again
        answer["subscription"] = "confirmed"
    if seen:
        redis.set(seen, 1, ex=REMEMBERED_SECONDS)
    return jsonify(answer)


class NotConfirmed(DomainError):
    code = "not_confirmed"
    kind = ErrorKind.UNAVAILABLE
    message = N_("The subscription could not be confirmed with Amazon SNS; it will try again.")


def _body() -> bytes:
    length = request.content_length
    if length is not None and length > MAX_WEBHOOK_BYTES:
        raise RequestEntityTooLarge()
    body = request.stream.read(MAX_WEBHOOK_BYTES + 1)
    if len(body) > MAX_WEBHOOK_BYTES:
        raise RequestEntityTooLarge()
    return body


def _seen_key(provider: str, replay_key: str | None) -> str | None:
    if not replay_key:
        return None
    digest = hashlib.sha256(f"{provider}:{replay_key}".encode()).hexdigest()
    return f"pressroom:webhook-seen:{digest}"
