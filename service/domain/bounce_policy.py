"""The one policy for what comes back: every door (the bounce server, `bounces read`, the
provider webhooks) hands its reports here, and the README's "Bounces and complaints" table
says the same.

- hard bounce: 5.1.x (no such mailbox or domain), 5.4.x (no route), 5.2.1 (disabled):
  the reader is bounced and suppressed at once; the release counts it;
- soft bounce: 4.x.x, 5.2.2 (mailbox full), `Action: delayed`, a failure that gives no
  reason: a point (at most one a day), stale after 7 days; at 5 points the reader is bounced
  and suppressed; the release counts it;
- complaint (ARF `abuse`, a provider's complaint event): the reader is unsubscribed and
  suppressed at once; the release counts it;
- refusal of the message: 5.7.x (policy, spam), 5.6.x (content), 5.3.4 and 5.2.3 (size),
  5.5.x (protocol): counted against the release, never the reader;
- auto-replies (RFC 3834) are no reports (report_mail.is_auto_reply): nothing at all.

The same report twice (a webhook's retry, one report through two doors) counts once: a
report is keyed by its delivery (release and reader) and kind, or when no delivery is known
by the report's own id. A report naming nobody on file (an erased reader, a stranger)
changes nothing and is not kept.

Sources: RFC 3463 (status codes), RFC 3464 §2.3.3 (Action), RFC 5965 (ARF); Mailman 3's
bounce processing (score threshold 5, `bounce_info_stale_after` 7 days, one bounce a day);
Mailman bug #624 (content refusals scored against members).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.db import MAX_ROW_ID, insert_for
from service.domain import consent_ledger, release_messages, subscriptions, webhook_outbox
from service.domain.addresses import normalize_address
from service.domain.errors import InvalidAddress
from service.domain.webhook_endpoints import EventType
from service.models import (
    BounceReport,
    ConsentChannel,
    Delivery,
    Release,
    ReportDoor,
    ReportKind,
    ReportOutcome,
    Subscriber,
    SubscriberStatus,
    SubscriptionEventKind,
    SuppressionReason,
)

SCORE_THRESHOLD = 5  # soft bounces that make a reader bounced (Mailman 3: bounce_score_threshold)
SCORE_STALE_AFTER = timedelta(days=7)  # Mailman 3: bounce_info_stale_after

_UNKNOWN_USER = re.compile(
    r"\b(user unknown|unknown user|no such (user|mailbox|recipient|address)|"
    r"(mailbox|address|recipient|user)( \S+)? (does not exist|not found|unavailable|unknown)|"
    r"invalid (recipient|mailbox|address)|recipient address rejected|"
    r"account (has been )?(disabled|deactivated)|no mailbox here)\b",
    re.IGNORECASE,
)
_REFUSAL = re.compile(
    r"\b(spam|blocked|blacklist|blocklist|policy|reputation|dmarc|spf|dkim|rejected for "
    r"content|message (was )?rejected|too large|size limit)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Report:
    """One report about one message, from any door.

    `action`: "failed", "delayed" or "complaint" (report_mail.FailedRecipient's); `status`:
    an RFC 3463 code or None. Who it is about is found from the first of `delivery_id` (a
    VERP address), `subscriber_id` (a notice's VERP address), `message_id` with `address`,
    and `address` alone. `report_id`: the report's id at its door, for telling repeats apart.
    `kind`: given by doors whose events say it outright (a provider's "complaint"); None to
    classify `action`, `status` and `diagnostic`. `address_vouched`: the door proved who
    sent the report (a provider's signature), so an address alone may name the reader; from
    a mail anybody could write, an address counts only with the original's Message-ID.
    """

    door: ReportDoor
    action: str
    status: str | None = None
    diagnostic: str = ""
    address: str | None = None
    delivery_id: int | None = None
    subscriber_id: int | None = None
    message_id: str | None = None
    report_id: str | None = None
    kind: ReportKind | None = None
    address_vouched: bool = False


@dataclass(frozen=True)
class Taken:
    """What a report did. `kind` None: it named nobody on file and nothing was kept;
    `repeat`: the same report was taken before, and this one changed nothing."""

    kind: ReportKind | None
    outcome: ReportOutcome | None
    release_id: int | None = None
    repeat: bool = False


IGNORED = Taken(None, None)


def classify(action: str, status: str | None, diagnostic: str = "") -> ReportKind:
    """The kind of a failure, by RFC 3463 class and subject (the table above)."""
    if action == "complaint":
        return ReportKind.COMPLAINT
    if action == "delayed" or (status or "").startswith("4."):
        return ReportKind.SOFT_BOUNCE
    if status is None or status in ("5.0.0", "5.0"):
        if _UNKNOWN_USER.search(diagnostic):
            return ReportKind.HARD_BOUNCE
        if _REFUSAL.search(diagnostic):
            return ReportKind.REFUSAL
        return ReportKind.SOFT_BOUNCE  # failed, but not saying why: never blame at once
    subject, _, detail = status.partition(".")[2].partition(".")
    if subject in ("1", "4") or (subject, detail) == ("2", "1"):
        return ReportKind.HARD_BOUNCE
    if subject in ("5", "6", "7") or (subject, detail) in (("2", "3"), ("3", "4")):
        return ReportKind.REFUSAL
    return ReportKind.SOFT_BOUNCE


def take(session: Session, report: Report, *, now: datetime) -> Taken:
    """Apply one report (the caller commits). A report for a reader on file is kept once;
    see the module's table for what it does."""
    kind = report.kind or classify(report.action, report.status, report.diagnostic)
    subscriber, release_id = _who(session, report)
    if subscriber is None and not (kind is ReportKind.REFUSAL and release_id is not None):
        return IGNORED
    subscriber_id = subscriber.id if subscriber is not None else None
    if release_id is not None and subscriber_id is not None:
        identity = f"delivery:{release_id}:{subscriber_id}:{kind}"
    elif report.report_id:
        identity = f"report:{report.report_id}:{subscriber_id}:{kind}"
    else:  # a report without any id of its own: one of a kind a day
        identity = f"day:{now.date()}:{subscriber_id}:{release_id}:{kind}"
    inserted = session.execute(
        insert_for(session, BounceReport)
        .values(
            report_key=hashlib.sha256(identity.encode()).hexdigest(),
            kind=kind,
            door=report.door,
            outcome=ReportOutcome.UNCHANGED,
            status=(report.status or "")[:16] or None,
            release_id=release_id,
            subscriber_id=subscriber_id,
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=["report_key"])
        .returning(BounceReport.id)
    ).scalar()
    if inserted is None:
        return Taken(kind, None, release_id, repeat=True)
    outcome = _apply(session, kind, subscriber, release_id, now=now)
    session.execute(update(BounceReport).where(BounceReport.id == inserted).values(outcome=outcome))
    return Taken(kind, outcome, release_id)


def _apply(
    session: Session,
    kind: ReportKind,
    subscriber: Subscriber | None,
    release_id: int | None,
    *,
    now: datetime,
) -> ReportOutcome:
    if subscriber is None or kind is ReportKind.REFUSAL:
        return ReportOutcome.COUNTED
    if kind is ReportKind.COMPLAINT:
        left = subscriptions.unsubscribe_subscriber(
            session,
            subscriber,
            now=now,
            release_id=release_id,
            origin=consent_ledger.Origin(ConsentChannel.COMPLAINT),
        )
        added = subscriptions.suppress(
            session, subscriber.email, SuppressionReason.COMPLAINED, now=now, release_id=release_id
        )
        return ReportOutcome.UNSUBSCRIBED if left or added else ReportOutcome.UNCHANGED
    if kind is ReportKind.SOFT_BOUNCE:
        # Locked (PostgreSQL): two reports at once must not both read the same score.
        session.refresh(subscriber, with_for_update=True)
        if subscriber.status is not SubscriberStatus.CONFIRMED:
            return ReportOutcome.UNCHANGED
        last = subscriber.last_bounce_at
        if last is None or now - last >= SCORE_STALE_AFTER:
            subscriber.bounce_score = 0  # stale, or of unknown age (scored before this policy)
        scored = last is None or last.date() != now.date() or subscriber.bounce_score == 0
        if scored:
            subscriber.bounce_score += 1
        subscriber.last_bounce_at = now
        if subscriber.bounce_score < SCORE_THRESHOLD:
            # SCORED only when a point was added: `subscribers unbounce` takes those back.
            return ReportOutcome.SCORED if scored else ReportOutcome.UNCHANGED
    return _bounced(session, subscriber, release_id, now=now)


def _bounced(
    session: Session, subscriber: Subscriber, release_id: int | None, *, now: datetime
) -> ReportOutcome:
    if subscriber.status in (SubscriberStatus.CONFIRMED, SubscriberStatus.PENDING):
        left = subscriptions.leave_list(
            session,
            subscriber.id,
            SubscriptionEventKind.BOUNCED,
            now=now,
            release_id=release_id,
            status=SubscriberStatus.BOUNCED,
            updated_at=now,
        )
        was_pending = session.execute(
            update(Subscriber)
            .where(Subscriber.id == subscriber.id, Subscriber.status == SubscriberStatus.PENDING)
            .values(status=SubscriberStatus.BOUNCED, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        session.refresh(subscriber)
        if left or was_pending:
            webhook_outbox.subscriber_changed(
                session, EventType.SUBSCRIBER_BOUNCED, subscriber, now=now, release_id=release_id
            )
        changed = True
    else:
        changed = False
    added = subscriptions.suppress(
        session, subscriber.email, SuppressionReason.BOUNCED, now=now, release_id=release_id
    )
    return ReportOutcome.SUPPRESSED if changed or added else ReportOutcome.UNCHANGED


def _who(session: Session, report: Report) -> tuple[Subscriber | None, int | None]:
    """The reader and release a report is about (see Report)."""
    if report.delivery_id is not None:
        row = session.execute(
            select(Delivery.subscriber_id, Delivery.release_id).where(
                Delivery.id == report.delivery_id
            )
        ).first()
        if row is not None:
            return session.get(Subscriber, row.subscriber_id), row.release_id
    if report.subscriber_id is not None:
        subscriber = session.get(Subscriber, report.subscriber_id)
        if subscriber is not None:
            return subscriber, None
    if not report.address:
        return None, None
    try:
        address = normalize_address(report.address)
    except InvalidAddress:
        address = report.address.strip().lower()
    subscriber = session.scalar(select(Subscriber).where(Subscriber.email == address))
    release_id = _release_of(session, report.message_id, subscriber)
    if release_id is None and not report.address_vouched:
        # Anybody can mail a "bounce" naming any address: without a VERP code or the
        # Message-ID of that reader's copy (release_messages), it names nobody.
        return None, None
    return subscriber, release_id


def _release_of(
    session: Session, message_id: str | None, subscriber: Subscriber | None
) -> int | None:
    if subscriber is None:
        return None
    release_id = release_messages.release_of(message_id, subscriber.uid)
    if release_id is None or release_id > MAX_ROW_ID or session.get(Release, release_id) is None:
        return None
    return release_id
