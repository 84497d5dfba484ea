"""Sending one outgoing webhook event: claim its attempt (webhook_outbox), POST the signed
body, settle the outcome. Called by the worker's task (workers/tasks.py deliver_webhook).

The POST: JSON, signed as Standard Webhooks says (webhook_signing), TIMEOUT seconds at most;
a 2xx answer is delivery. A redirect is not followed (a receiver moves by being registered
again), and counts as a failure like any other answer. Logs name the endpoint's id, never
its URL (which may hold a token), the secret or a reader's address.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from service.config import Settings
from service.domain import webhook_outbox, webhook_signing
from service.models import WebhookEventStatus
from service.sending import meters

log = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds for the whole answer's head
USER_AGENT = "Pressroom-Webhooks/1"

Post = Callable[[str, dict[str, str], bytes], str | None]  # url, headers, body -> error or None


@dataclass(frozen=True)
class Delivery:
    """What the task does next: nothing, try this event again at `retry_at`, or ring the
    event that was waiting behind it (`next_in_line`)."""

    status: WebhookEventStatus | None  # None: there was no attempt to make
    retry_at: datetime | None = None
    next_in_line: int | None = None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # urllib then raises HTTPError for the 3xx answer


_opener = urllib.request.build_opener(_NoRedirects())


def http_post(url: str, headers: dict[str, str], body: bytes) -> str | None:
    """POST `body` to `url`: None for a 2xx answer, else a short reason (the status, or what
    stopped the connection)."""
    request = urllib.request.Request(
        url, data=body, headers={**headers, "user-agent": USER_AGENT}, method="POST"
    )
    try:
        with _opener.open(request, timeout=TIMEOUT) as answer:
            status = answer.status
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}" + (" (a redirect, not followed)" if error.code < 400 else "")
    except urllib.error.URLError as error:
        return f"no answer: {error.reason}"
    except (TimeoutError, OSError, ValueError) as error:
        return f"no answer: {error.__class__.__name__}: {error}"
    except Exception as error:  # http.client's own: not HTTP at all (BadStatusLine, ...)
        return f"no answer: {error.__class__.__name__}"
    return None if 200 <= status < 300 else f"HTTP {status}"


def deliver(
    open_session: Callable[[], AbstractContextManager[Session]],
    row_id: int,
    settings: Settings,
    *,
    now: Callable[[], datetime],
    post: Post = http_post,
) -> Delivery:
    """One attempt of outbox event `row_id`, when it is due and first in its line."""
    with open_session() as session:
        attempt = webhook_outbox.claim(session, row_id, now=now())
    if attempt is None:
        return Delivery(None)
    sent_at = now()
    body = attempt.body
    headers = webhook_signing.headers(
        attempt.secret, attempt.event_id, int(sent_at.timestamp()), body
    )
    error = post(attempt.url, headers, body.encode())
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
