"""Releases and their delivery: one row per (release, subscriber) is the truth of who got what."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db import Base, UTCDateTime, string_enum, utcnow


class ReleaseStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"
    CANCELLED = "cancelled"
    PUBLISHED = "published"  # on the site and in the feed, never emailed (archive only)


class ReleaseKind(enum.StrEnum):
    RELEASE = "release"  # written by press staff
    # A digest run (domain/digests): one email per digest reader listing their held releases.
    # Never public, never edited: it is a Release row so the send pipeline carries it.
    DIGEST = "digest"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # owed; may carry next_attempt_at after a 4xx
    SENDING = "sending"  # claimed by a worker until lease_expires_at
    SENT = "sent"
    FAILED = "failed"  # refused for good (5xx)
    SKIPPED = "skipped"  # the reader left before their copy went out
    CANCELLED = "cancelled"  # the release was cancelled first
    # Owed in the reader's next digest (a daily or weekly reader); `digest_id` names the digest
    # run that took it, and the row takes that digest's outcome when the run ends.
    HELD = "held"


class Release(Base):
    __tablename__ = "releases"
    # One digest run per frequency and scheduled time, whoever notices it is due.
    __table_args__ = (UniqueConstraint("digest_frequency", "digest_due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")  # Markdown as written
    body_html: Mapped[str] = mapped_column(Text, default="")  # rendered and sanitized
    language: Mapped[str] = mapped_column(String(8))
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    # {"en": {"title", "summary", "body", "body_html"}}: other language versions.
    translations: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    fallback_to_primary: Mapped[bool] = mapped_column(Boolean, default=True)
    send_email: Mapped[bool] = mapped_column(Boolean, default=True)
    kind: Mapped[ReleaseKind] = mapped_column(
        string_enum(ReleaseKind, "release_kind", length=12), default=ReleaseKind.RELEASE
    )
    # A digest run's frequency ("daily" or "weekly") and the time it was due.
    digest_frequency: Mapped[str | None] = mapped_column(String(12))
    digest_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    status: Mapped[ReleaseStatus] = mapped_column(
        string_enum(ReleaseStatus, "release_status"), default=ReleaseStatus.DRAFT, index=True
    )
    publish_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Closed to the public (page, feed, email) until then; publishing earlier is refused.
    embargo_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The sent release this one corrects: emailed only to who got that one, in its thread.
    # RESTRICT: an original a correction points to is history that stays.
    corrects_id: Mapped[int | None] = mapped_column(
        ForeignKey("releases.id", ondelete="RESTRICT"), index=True
    )
    # Loaded when asked for (a correction's email names its original's title).
    corrects: Mapped[Release | None] = relationship(
        remote_side="Release.id", foreign_keys=[corrects_id]
    )
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    send_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    send_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Planning checkpoint: subscribers up to this id already have their delivery row.
    last_subscriber_id: Mapped[int] = mapped_column(Integer, default=0)
    planned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    pause_reason: Mapped[str | None] = mapped_column(String(300))
    # The guard (send_guards.Guard) that paused the send, while it is paused by one; and the
    # guards a resume waived for the rest of this send ("complaints,bounces").
    pause_guard: Mapped[str | None] = mapped_column(String(16))
    guards_waived: Mapped[str] = mapped_column(String(40), default="")

    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("publishers.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    def version(self, language: str) -> dict[str, str] | None:
        """The title/summary/body for a language, or None when the release has no such version."""
        if language == self.language:
            return {
                "title": self.title,
                "summary": self.summary,
                "body": self.body,
                "body_html": self.body_html,
            }
        found = (self.translations or {}).get(language)
        return dict(found) if found else None

    @property
    def waived_guards(self) -> set[str]:
        return {name for name in (self.guards_waived or "").split(",") if name}

    @property
    def languages(self) -> list[str]:
        return [self.language, *sorted(self.translations or {})]


LISTED = "status = 'held' AND digest_id IS NOT NULL"


class Delivery(Base):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("release_id", "subscriber_id"),
        Index("ix_deliveries_release_status", "release_id", "status", "id"),  # claim order
        Index("ix_deliveries_status_lease", "status", "lease_expires_at"),
        Index("ix_deliveries_status_subscriber", "status", "subscriber_id"),  # held rows
        # Rows listed in a digest not yet settled (domain/digests): empty between runs.
        Index(
            "ix_deliveries_listed",
            "digest_id",
            "subscriber_id",
            postgresql_where=text(LISTED),
            sqlite_where=text(LISTED),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[DeliveryStatus] = mapped_column(
        string_enum(DeliveryStatus, "delivery_status"), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(300))
    # A held row (DeliveryStatus.HELD): the digest run (a Release of kind DIGEST) that lists it.
    digest_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id", ondelete="SET NULL"))
