"""The endpoints outgoing webhooks are sent to: add (with a secret shown once), list, remove.

The event types an endpoint may ask for are EVENT_TYPES (README "Outgoing webhooks" says what
each carries). A URL is http(s) with a host, and no user or password in it: the signature
is how a receiver knows the sender. Unless WEBHOOK_ALLOW_PRIVATE is set (`allow_private`), its
host is not an internal address written out, nor localhost (webhook_addresses; the POST
checks the address it actually connects to as well).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain import webhook_addresses, webhook_signing
from service.domain.errors import N_, InvalidInput, NotFound
from service.models import WebhookEndpoint

MAX_URL = 2000


class EventType(enum.StrEnum):
    SUBSCRIBER_CONFIRMED = "subscriber.confirmed"
    SUBSCRIBER_UNSUBSCRIBED = "subscriber.unsubscribed"
    SUBSCRIBER_BOUNCED = "subscriber.bounced"
    RELEASE_PUBLISHED = "release.published"
    RELEASE_SENT = "release.sent"
    RELEASE_PAUSED = "release.paused"


EVENT_TYPES = tuple(kind.value for kind in EventType)


class UnknownEndpoint(NotFound):
    code = "unknown_webhook"
    message = N_("There is no webhook endpoint %(id)s.")


@dataclass(frozen=True)
class Added:
    endpoint: WebhookEndpoint
    secret: str  # shown once: the operator gives it to the receiver


def check_url(url: str, *, allow_private: bool = False) -> str:
    """The URL, stripped. Raises InvalidInput unless it is http(s) with a host, no
    credentials and at most MAX_URL characters, and (unless `allow_private`) its host is no
    loopback, private, link-local, multicast, reserved or unspecified address, nor localhost."""
    url = url.strip()
    if len(url) > MAX_URL:
        raise InvalidInput(N_("A webhook URL has at most %(max)s characters."), max=MAX_URL)
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port out of range
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(N_("A webhook URL starts with http:// or https:// and names a host."))
    if parts.username is not None or parts.password is not None or any(c.isspace() for c in url):
        raise InvalidInput(N_("A webhook URL holds no spaces, user name or password."))
    del port
    if webhook_addresses.literal_host_refused(parts.hostname, allow_private=allow_private):
        raise InvalidInput(
            N_(
                "A webhook may not go to this machine or an internal network address "
                "(WEBHOOK_ALLOW_PRIVATE allows it)."
            )
        )
    return url


def check_events(names: list[str]) -> list[str]:
    """The event types, deduplicated in EVENT_TYPES' order. Raises InvalidInput for none or
    for a name that is not one."""
    wanted = {name.strip() for name in names if name.strip()}
    if not wanted:
        raise InvalidInput(N_("Name at least one event: %(known)s."), known=", ".join(EVENT_TYPES))
    unknown = sorted(wanted - set(EVENT_TYPES))
    if unknown:
        raise InvalidInput(
            N_("Unknown event %(name)s; the events are %(known)s."),
            name=unknown[0][:40],
            known=", ".join(EVENT_TYPES),
        )
    return [name for name in EVENT_TYPES if name in wanted]


def add(
    session: Session,
    url: str,
    events: list[str],
    *,
    include_address: bool,
    now: datetime,
    allow_private: bool = False,
) -> Added:
    """Register an endpoint. `allow_private`: WEBHOOK_ALLOW_PRIVATE. Raises InvalidInput
    (check_url, check_events)."""
    endpoint = WebhookEndpoint(
        url=check_url(url, allow_private=allow_private),
        events=",".join(check_events(events)),
        include_address=include_address,
        secret=webhook_signing.new_secret(),
        enabled=True,
        created_at=now,
    )
    session.add(endpoint)
    session.flush()
    return Added(endpoint, endpoint.secret)


def every(session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def remove(session: Session, endpoint_id: int) -> WebhookEndpoint:
    """Delete an endpoint and every event still owed to it. Raises UnknownEndpoint."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise UnknownEndpoint(id=endpoint_id)
    session.delete(endpoint)
    session.flush()
    return endpoint


def listening(session: Session, event_type: EventType) -> list[WebhookEndpoint]:
    """The enabled endpoints that asked for `event_type`."""
    return [
        endpoint
        for endpoint in session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.enabled.is_(True))
        )
        if event_type.value in endpoint.event_types
    ]
