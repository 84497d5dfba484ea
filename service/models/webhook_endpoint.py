"""Outgoing webhooks: the endpoints operators register, and the outbox of signed events owed
to each (service/domain/webhook_outbox.py writes it, service/sending/webhook_posts.py sends it).

Not the provider webhooks that come in (service/web/webhooks.py): these go out.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime, string_enum, utcnow


class WebhookEventStatus(enum.StrEnum):
    PENDING = "pending"  # owed: next_attempt_at says when (a claimed attempt moves it on)
    DELIVERED = "delivered"  # the endpoint answered 2xx
    FAILED = "failed"  # no 2xx before WEBHOOK_RETRY_SECONDS after the event had passed


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    # Event types, comma-separated, e.g. "subscriber.confirmed,release.sent".
    events: Mapped[str] = mapped_column(String(500))
    # Whether subscriber events carry the reader's address; otherwise only their uid.
    include_address: Mapped[bool] = mapped_column(Boolean, default=False)
    # `whsec_<base64 key>` (Standard Webhooks): shown once when the endpoint is added.
    secret: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def event_types(self) -> list[str]:
        return [name for name in self.events.split(",") if name]


class WebhookEvent(Base):
    """One event owed to one endpoint: the exact body that is signed and sent, every time."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        Index("ix_webhook_events_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_events_endpoint_ordering", "endpoint_id", "ordering_key", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    # The `webhook-id` header: the same on every attempt, so receivers can drop repeats.
    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)  # JSON, as signed
    # What the events of one endpoint are kept in order by: the reader's uid, or release-<id>.
    ordering_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[WebhookEventStatus] = mapped_column(
        string_enum(WebhookEventStatus, "webhook_event_status"),
        default=WebhookEventStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
