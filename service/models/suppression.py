"""Addresses that must not be re-added by an import, kept only as a hash."""

from __future__ import annotations

import enum
import hashlib
from datetime import datetime

from sqlalchemy import String
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
