"""What came back after a message left: bounces (RFC 3464 DSNs and the non-standard kinds),
complaints (RFC 5965 ARF, provider events), and refusals of the message itself.

`BounceReport` is one report as the policy took it (service.domain.bounce_policy): its kind,
which door it came through, the release and reader it names, and what it did. It keeps no
address: a reader erased later leaves the report standing (the release's counts stay true)
with `subscriber_id` emptied. `IncomingReport` is a report mail as the bounce server took it,
kept only until a worker has read it (the database holds it; Redis only rings).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import Base, UTCDateTime, string_enum, utcnow


class ReportKind(enum.StrEnum):
    HARD_BOUNCE = "hard_bounce"  # the address does not exist or takes no mail (5.1.x, 5.4.x)
    SOFT_BOUNCE = "soft_bounce"  # a passing failure: mailbox full, delayed, 4.x.x
    COMPLAINT = "complaint"  # the reader pressed "spam" (ARF feedback-type abuse)
    REFUSAL = "refusal"  # the message was refused for its content or our reputation (5.7.x)


class ReportDoor(enum.StrEnum):
    SMTP = "smtp"  # the bounce server (`bounces serve`)
    RELAY = "relay"  # our relay refused the recipient during the SMTP conversation
    FILE = "file"  # `bounces read`
    SES = "ses"
    POSTMARK = "postmark"
    MAILGUN = "mailgun"
    SENDGRID = "sendgrid"
    GENERIC = "generic"


class ReportOutcome(enum.StrEnum):
    SUPPRESSED = "suppressed"  # the reader is marked bounced and suppressed
    SCORED = "scored"  # a soft bounce's point, below the threshold
    UNSUBSCRIBED = "unsubscribed"  # a complaint: unsubscribed and suppressed
    COUNTED = "counted"  # against the release only
    UNCHANGED = "unchanged"  # the reader was already off the list, or scored today already


class BounceReport(Base):
    __tablename__ = "bounce_reports"
    __table_args__ = (Index("ix_bounce_reports_release_kind", "release_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # sha256 of what makes two reports one (the delivery and kind, or the report's own id):
    # webhook retries and the same report through two doors count once.
    report_key: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[ReportKind] = mapped_column(string_enum(ReportKind, "report_kind"))
    door: Mapped[ReportDoor] = mapped_column(string_enum(ReportDoor, "report_door"))
    outcome: Mapped[ReportOutcome] = mapped_column(string_enum(ReportOutcome, "report_outcome"))
    status: Mapped[str | None] = mapped_column(String(16))  # RFC 3463 enhanced code, "5.1.1"
    release_id: Mapped[int | None] = mapped_column(
        ForeignKey("releases.id", ondelete="SET NULL"), index=False
    )
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="SET NULL"), index=True
    )
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class IncomingReport(Base):
    __tablename__ = "incoming_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    door: Mapped[ReportDoor] = mapped_column(string_enum(ReportDoor, "report_door"))
    message: Mapped[bytes] = mapped_column(LargeBinary)
    # The RCPT TO addresses it came with, one per line: a VERP address may be only there.
    recipients: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
