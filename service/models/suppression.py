"""Addresses that must not be re-added by an import, kept only as a hash."""

from __future__ import annotations

import enum
import hashlib
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime, string_enum, utcnow


class SuppressionReason(enum.StrEnum):
    ERASED = "erased"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


def address_hash(email: str) -> str:
    """The hash kept for a normalized address: enough to recognise it, not to recover it."""
    return hashlib.sha256(("pressroom-suppression:" + email.lower()).encode()).hexdigest()


class Suppression(Base):
    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[SuppressionReason] = mapped_column(
        string_enum(SuppressionReason, "suppression_reason")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The address itself, for a bounce or a complaint (the reader's row still holds it);
    # never for an erasure, which keeps the hash alone.
    email: Mapped[str | None] = mapped_column(String(254))
    # The release whose bounce or complaint put the address here, when one did.
    release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id", ondelete="SET NULL"))


class SuppressionLift(Base):
    """A suppression lifted by press staff: when, by whom, why (the note), and what it was.
    The address is kept as its hash only, as the suppression was for an erasure."""

    __tablename__ = "suppression_lifts"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[SuppressionReason] = mapped_column(
        string_enum(SuppressionReason, "suppression_reason")
    )
    suppressed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lifted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    lifted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("publishers.id", ondelete="SET NULL")
    )
    note: Mapped[str] = mapped_column(String(500))
