"""An anonymous log of readers joining and leaving the list, for the desk's charts.

Each row is one move into or out of the confirmed list, and nothing about who moved: no
subscriber id, no address. It outlives re-subscription and erasure (which deletes the reader's
row but need not touch this log), so the history of the list's size stays true.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime, string_enum


class SubscriptionEventKind(enum.StrEnum):
    CONFIRMED = "confirmed"  # joined: confirmed the opt-in, or imported as confirmed
    UNSUBSCRIBED = "unsubscribed"  # a confirmed reader left
    BOUNCED = "bounced"  # a confirmed reader's address stopped taking mail
    ERASED = "erased"  # a confirmed reader had their data deleted
    # joined again: a reader took back their unsubscribe within 24 hours (no new opt-in)
    RESTORED = "restored"


class SubscriptionEvent(Base):
    __tablename__ = "subscription_events"
    __table_args__ = (
        Index("ix_subscription_events_occurred_kind", "occurred_at", "kind"),
        Index("ix_subscription_events_release_kind", "release_id", "kind"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[SubscriptionEventKind] = mapped_column(
        string_enum(SubscriptionEventKind, "subscription_event_kind")
    )
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The release whose email the reader left from (its unsubscribe link), when known.
    release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id", ondelete="SET NULL"))
