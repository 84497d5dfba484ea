"""Readers and what they agreed to."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db import Base, UTCDateTime, string_enum, utcnow
from service.locales import PRIMARY_LANGUAGE


class SubscriberStatus(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"


class OwedNotice(enum.StrEnum):
    """A notice a reader is owed and that has not been handed to the task queue yet."""

    CONFIRMATION = "confirmation"
    ALREADY_SUBSCRIBED = "already_subscribed"
    WELCOME = "welcome"


class Frequency(enum.StrEnum):
    """How often a reader hears from the list: each release as it is sent, or a digest."""

    IMMEDIATELY = "immediately"
    DAILY = "daily"
    WEEKLY = "weekly"


class ConsentSource(enum.StrEnum):
    FORM = "form"
    API = "api"
    IMPORT = "import"


def new_uid() -> str:
    return uuid.uuid4().hex


class Subscriber(Base):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Tokens name this, never the integer id: ids can be reused after an erasure.
    uid: Mapped[str] = mapped_column(String(32), unique=True, default=new_uid)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[SubscriberStatus] = mapped_column(
        string_enum(SubscriberStatus, "subscriber_status"),
        default=SubscriberStatus.PENDING,
        index=True,
    )
    language: Mapped[str] = mapped_column(String(8), default=PRIMARY_LANGUAGE)
    frequency: Mapped[Frequency] = mapped_column(
        string_enum(Frequency, "frequency", length=12), default=Frequency.IMMEDIATELY
    )
    token_version: Mapped[int] = mapped_column(Integer, default=1)
    bounce_score: Mapped[int] = mapped_column(Integer, default=0)
    # When the last bounce was scored: a score older than bounce_policy.SCORE_STALE_AFTER
    # starts again from nothing (Mailman 3's bounce_info_stale_after).
    last_bounce_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    consent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    consent_ip: Mapped[str | None] = mapped_column(String(45))
    consent_user_agent: Mapped[str | None] = mapped_column(String(512))
    consent_source: Mapped[ConsentSource] = mapped_column(
        string_enum(ConsentSource, "consent_source")
    )
    consent_text_version: Mapped[str] = mapped_column(String(64))
    # Where an imported list came from and on what terms (`subscribers import --consent-note`).
    consent_note: Mapped[str | None] = mapped_column(String(500))

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    confirmation_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    confirmed_ip: Mapped[str | None] = mapped_column(String(45))
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Written in the transaction that owes the notice, cleared once the task queue has it: a
    # failed doorbell (Redis down) leaves it for the sweep to ring again (domain/owed_notices).
    notice_owed: Mapped[OwedNotice | None] = mapped_column(
        string_enum(OwedNotice, "owed_notice", length=24)
    )
    notice_owed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)

    # An imported reader invited to confirm (domain/invitations): the round's time, and when
    # the worker sent this reader's invitation (None while it waits for its turn).
    invited_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    invitation_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    topic_rows: Mapped[list[SubscriberTopic]] = relationship(
        back_populates="subscriber",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="SubscriberTopic.topic",
        lazy="selectin",
    )

    @property
    def topics(self) -> list[str]:
        return [row.topic for row in self.topic_rows]

    def set_topics(self, topics: list[str]) -> None:
        wanted = sorted(set(topics))
        if wanted != self.topics:
            self.topic_rows = [SubscriberTopic(topic=t) for t in wanted]

    def __repr__(self) -> str:
        return f"<Subscriber {self.id} {self.status.value}>"


class SubscriberTopic(Base):
    """A topic a reader chose; a reader with none receives every release."""

    __tablename__ = "subscriber_topics"

    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    topic: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)

    subscriber: Mapped[Subscriber] = relationship(back_populates="topic_rows")
