"""Sending one outgoing webhook event: claim its attempt (webhook_outbox), POST the signed
body, settle the outcome. Called by the worker's task (workers/tasks.py deliver_webhook).

The POST (webhook_http): JSON, signed as Standard Webhooks says (webhook_signing), within
webhook_http.DEADLINE seconds, to a public address unless WEBHOOK_ALLOW_PRIVATE; a 2xx answer
is delivery. A redirect is not followed (a receiver moves by being registered again), and
counts as a failure like any other answer. Logs name the endpoint's id, never its URL (which
may hold a token), the secret or a reader's address.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from service.config import Settings
from service.domain import webhook_outbox, webhook_signing
from service.models import WebhookEventStatus
from service.sending import meters, webhook_http

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """What the task does next: nothing, try this event again at `retry_at`, or ring the
    event that was waiting behind it (`next_in_line`)."""

    status: WebhookEventStatus | None  # None: there was no attempt to make
    retry_at: datetime | None = None
    next_in_line: int | None = None


def deliver(
    open_session: Callable[[], AbstractContextManager[Session]],
    row_id: int,
    settings: Settings,
    *,
    now: Callable[[], datetime],
) -> Delivery:
    """One attempt of outbox event `row_id`, when it is due and first in its line; internal
    addresses only with `settings.webhook_allow_private`."""
    with open_session() as session:
        attempt = webhook_outbox.claim(session, row_id, now=now())
    if attempt is None:
        return Delivery(None)
    sent_at = now()
    body = attempt.body
    headers = webhook_signing.headers(
        attempt.secret, attempt.event_id, int(sent_at.timestamp()), body
    )
    error = webhook_http.post(
        attempt.url, headers, body.encode(), allow_private=settings.webhook_allow_private
    )
    with open_session() as session:
        settled = webhook_outbox.settle(
            session,
            attempt,
            error=error,
            now=now(),
            retry_seconds=settings.webhook_retry_seconds,
            backoff_seconds=settings.webhook_backoff_seconds,
        )
    if settled is None:
        return Delivery(None)
    outcome = "retrying" if settled.status is WebhookEventStatus.PENDING else settled.status.value
    meters.WEBHOOK_ATTEMPTS.labels(outcome).inc()
    if error is not None:
        log.warning(
            "webhook %s (%s, attempt %s) not delivered: %s; now %s",
            attempt.event_id,
            attempt.event_type,
            attempt.attempt,
            error,
            settled.status.value,
        )
    return Delivery(settled.status, settled.retry_at, settled.next_in_line)
