"""The consent ledger: one row per consent-relevant act of a reader, never updated.

`consent_records` holds who (the subscriber, None for an erasure's anonymous row), what (the
act), how (the door it came through), when, from where (the IP as CONSENT_IP_PRECISION keeps
it, the user agent), and the SHA-256 of the exact wording the reader was shown, whose text
`consent_texts` keeps once per hash. A database trigger (migration 0012) refuses every UPDATE
of either table; service/domain/consent_ledger.py refuses it in the ORM too.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime, string_enum


class ConsentAct(enum.StrEnum):
    SIGNUP = "signup"  # asked to subscribe (a new or a pending address)
    RESUBSCRIBE = "resubscribe"  # asked again after leaving (unsubscribed or bounced)
    CONFIRM = "confirm"  # confirmed the opt-in
    PREFERENCES = "preferences"  # changed language or topics
    UNSUBSCRIBE = "unsubscribe"
    UNDO = "undo"  # took an unsubscribe back within its 24 hours
    IMPORT = "import"  # added by an import, with its consent note
    ERASE = "erase"  # data erased: the anonymous row holds nothing personal


class ConsentChannel(enum.StrEnum):
    """The door an act came through."""

    FORM = "form"  # a page of the press room (subscribe, confirm, preferences, unsubscribe)
    API = "api"
    IMPORT = "import"  # `flask subscribers import` or the desk's import
    DESK = "desk"  # press staff on the desk
    ONE_CLICK = "one_click"  # a mail client's RFC 8058 one-click POST
    COMPLAINT = "complaint"  # a spam complaint from the reader's mail provider


class ConsentText(Base):
    """A wording shown to readers, kept once however many acts it was shown for."""

    __tablename__ = "consent_texts"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)  # hex, of the UTF-8 text
    language: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text())
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConsentRecord(Base):
    __tablename__ = "consent_records"
    __table_args__ = (
        Index("ix_consent_records_subscriber_occurred", "subscriber_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE")
    )
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    act: Mapped[ConsentAct] = mapped_column(string_enum(ConsentAct, "consent_act"))
    source: Mapped[ConsentChannel] = mapped_column(string_enum(ConsentChannel, "consent_channel"))
    ip: Mapped[str | None] = mapped_column(String(49))  # an address or a network, per precision
    user_agent: Mapped[str | None] = mapped_column(String(512))
    text_sha256: Mapped[str | None] = mapped_column(ForeignKey("consent_texts.sha256"))
    # The choices the act left the reader with (signup, confirm, preferences, undo, import).
    language: Mapped[str | None] = mapped_column(String(8))
    topics: Mapped[str | None] = mapped_column(String(1000))  # comma-separated; "" = every topic
    frequency: Mapped[str | None] = mapped_column(String(12))  # immediately, daily or weekly
    note: Mapped[str | None] = mapped_column(String(500))  # an import's consent note
