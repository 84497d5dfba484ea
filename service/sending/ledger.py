"""The send's ledger: plan recipients, claim rows with a lease, record results.

The database is the truth: every confirmed, matching reader gets one delivery row (UNIQUE per
release and subscriber), and a row is only ever sent by the worker holding its lease.

The functions take the caller's session and never commit; `SqlLedger` is the same bookkeeping
as a batch sees it (batch.Ledger), one transaction per call.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, and_, any_, case, exists, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from service.db import insert_for, utcnow
from service.domain import (
    bounce_policy,
    corrections,
    digests,
    releases,
    send_guards,
    webhook_outbox,
)
from service.domain.corrections import OriginalCopy
from service.domain.digest_messages import Listed
from service.domain.refusals import Reply
from service.domain.webhook_endpoints import EventType
from service.locales import LANGUAGES
from service.models import (
    Delivery,
    DeliveryStatus,
    Frequency,
    Release,
    ReleaseKind,
    ReleaseStatus,
    ReportDoor,
    Subscriber,
    SubscriberStatus,
    SubscriberTopic,
)
from service.sending import meters

log = logging.getLogger(__name__)
DEFAULT_LIMITS = send_guards.Limits()

FAILURES_SHOWN = 50
PLAN_CHUNK = 5_000
LEASE = timedelta(seconds=60)
MAX_BACKOFF = timedelta(minutes=30)


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    subscriber_id: int
    language: str
    attempts: int  # this one included
    last_error: str | None  # what the previous try ended with


@dataclass(frozen=True)
class Recipient:
    delivery_id: int
    subscriber_id: int
    uid: str
    email: str
    language: str
    attempts: int = 1
    last_error: str | None = None
    # A correction's reader: the email in which they got the original (its thread).
    original: OriginalCopy | None = None


def recipient_filter(release: Release) -> tuple[list[ColumnElement[bool]], ColumnElement[str]]:
    """Conditions for the confirmed subscribers this release goes to, and the language
    version each of them gets. A correction goes only to readers who got the original
    (corrections.original_copies), or for whom it is held for a digest still to go, of those
    its topics and languages choose."""
    available = [lang for lang in LANGUAGES if release.version(lang)]
    conditions: list[ColumnElement[bool]] = [Subscriber.status == SubscriberStatus.CONFIRMED]
    language: ColumnElement[str]
    if release.fallback_to_primary:
        language = case(
            (Subscriber.language.in_(available), Subscriber.language),
            else_=literal(release.language),
        )
    else:
        conditions.append(Subscriber.language.in_(available))
        language = Subscriber.language
    if release.topics:
        chose_topics = exists().where(SubscriberTopic.subscriber_id == Subscriber.id)
        shares_topic = exists().where(
            SubscriberTopic.subscriber_id == Subscriber.id,
            SubscriberTopic.topic.in_(list(release.topics)),
        )
        conditions.append(or_(~chose_topics, shares_topic))
    if release.corrects_id is not None:
        copies = corrections.original_copies(release.corrects_id).subquery()
        conditions.append(
            or_(
                Subscriber.id.in_(select(copies.c.subscriber_id)),
                Subscriber.id.in_(corrections.original_held(release.corrects_id)),
            )
        )
    return conditions, language


def delivery_status(release: Release) -> ColumnElement[str]:
    """The state a reader's new delivery row starts in. A reader who chose a digest is owed
    the release in it (domain/digests): held, not sent. A correction goes at once to whoever
    got the original, in its own email or in a digest (it threads to that email), and is held
    for a reader whose digest with the original is still to go: it follows it there."""
    if release.corrects_id is not None:
        copies = corrections.original_copies(release.corrects_id).subquery()
        got_it = Subscriber.id.in_(select(copies.c.subscriber_id))
        return case((got_it, DeliveryStatus.PENDING.value), else_=DeliveryStatus.HELD.value)
    return case(
        (Subscriber.frequency == Frequency.IMMEDIATELY.value, DeliveryStatus.PENDING.value),
        else_=DeliveryStatus.HELD.value,
    )


def plan_chunk(
    session: Session, release: Release, *, now: datetime, chunk: int = PLAN_CHUNK
) -> int:
    """Snapshot the next chunk of recipients into delivery rows; returns rows added.

    Keyset pagination on subscriber id with a checkpoint on the release, and
    INSERT ... SELECT ... ON CONFLICT DO NOTHING: re-running a chunk after a crash adds nothing.
    """
    if release.kind is ReleaseKind.DIGEST:
        return digests.plan_chunk(session, release, now=now, chunk=chunk)
    conditions, language = recipient_filter(release)
    start = release.last_subscriber_id
    upper = session.scalar(
        select(Subscriber.id)
        .where(*conditions, Subscriber.id > start)
        .order_by(Subscriber.id)
        .offset(chunk - 1)
        .limit(1)
    )
    done = upper is None
    if done:
        upper = session.scalar(select(func.max(Subscriber.id))) or start
    status = delivery_status(release)
    rows = select(
        literal(release.id),
        Subscriber.id,
        language,
        status,
        literal(0),
    ).where(*conditions, Subscriber.id > start, Subscriber.id <= upper)
    statement = (
        insert_for(session, Delivery)
        .from_select(["release_id", "subscriber_id", "language", "status", "attempts"], rows)
        .on_conflict_do_nothing(index_elements=["release_id", "subscriber_id"])
    )
    added = session.execute(statement).rowcount or 0
    release.last_subscriber_id = max(release.last_subscriber_id, upper)
    if done:
        release.planned_at = now
    session.flush()
    return added


def claim(
    session: Session,
    release_id: int,
    *,
    owner: str,
    limit: int,
    now: datetime,
    lease: timedelta = LEASE,
) -> list[Claimed]:
    """Take up to `limit` due rows with a lease (compare-and-set; SKIP LOCKED on PostgreSQL).

    Only while the release is sending, checked in the same statement: a pause that commits
    between a worker's look at the release and its claim must not leave it sending anyway.
    """
    sending = exists().where(Release.id == release_id, Release.status == ReleaseStatus.SENDING)
    due = (
        select(Delivery.id)
        .where(
            Delivery.release_id == release_id,
            Delivery.status == DeliveryStatus.PENDING,
            or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
            sending,
        )
        .order_by(Delivery.id)
        .limit(limit)
    )
    chosen: Any = due.scalar_subquery()
    if session.get_bind().dialect.name == "postgresql":
        # Chosen once, in a materialized CTE: as a plain IN (subquery) the planner may take a
        # nested-loop semi-join that rescans the subquery for every pending row, and each
        # rescan of LIMIT ... FOR UPDATE SKIP LOCKED passes over the rows this statement has
        # already updated and locks the next ones: the claim outgrew `limit` (all due rows).
        locked = due.with_for_update(skip_locked=True).cte("due").prefix_with("MATERIALIZED")
        chosen = select(locked.c.id)
    result = session.execute(
        update(Delivery)
        .where(Delivery.id.in_(chosen), Delivery.status == DeliveryStatus.PENDING)
        .values(
            status=DeliveryStatus.SENDING,
            lease_owner=owner,
            lease_expires_at=now + lease,
            attempts=Delivery.attempts + 1,
        )
        .returning(
            Delivery.id,
            Delivery.subscriber_id,
            Delivery.language,
            Delivery.attempts,
            Delivery.last_error,
        )
        .execution_options(synchronize_session=False)
    )
    claimed = [Claimed(*row) for row in result.all()]
    claimed.sort(key=lambda c: c.delivery_id)
    return claimed


def recipients(session: Session, claimed: Sequence[Claimed]) -> tuple[list[Recipient], list[int]]:
    """Who of the claimed rows is still a confirmed reader, and which rows to skip."""
    by_subscriber = {c.subscriber_id: c for c in claimed}
    rows = session.execute(
        select(Subscriber.id, Subscriber.uid, Subscriber.email).where(
            _among(session, Subscriber.id, by_subscriber),
            Subscriber.status == SubscriberStatus.CONFIRMED,
        )
    ).all()
    found = {sid: (uid, email) for sid, uid, email in rows}
    keep = [
        Recipient(
            c.delivery_id,
            c.subscriber_id,
            *found[c.subscriber_id],
            c.language,
            c.attempts,
            c.last_error,
        )
        for c in claimed
        if c.subscriber_id in found
    ]
    skip = [c.delivery_id for c in claimed if c.subscriber_id not in found]
    return keep, skip


def threaded(
    session: Session, release: Release, keep: list[Recipient]
) -> tuple[list[Recipient], list[int]]:
    """A correction's recipients, each with the email in which they got the original
    (corrections.copies_to), and the rows to skip: a reader planned who has no such copy
    (none, as planning chose them by the same rule) gets no correction. Any other release's
    recipients as they are."""
    if release.corrects_id is None:
        return keep, []
    assert release.corrects is not None  # loaded here: the batch's message names its title
    copies = corrections.copies_to(session, release.corrects_id, [r.subscriber_id for r in keep])
    with_copy = [
        replace(r, original=copies[r.subscriber_id]) for r in keep if r.subscriber_id in copies
    ]
    return with_copy, [r.delivery_id for r in keep if r.subscriber_id not in copies]


def still_confirmed(session: Session, subscriber_ids: Iterable[int]) -> set[int]:
    ids = list(subscriber_ids)
    if not ids:
        return set()
    return set(
        session.scalars(
            select(Subscriber.id).where(
                _among(session, Subscriber.id, ids),
                Subscriber.status == SubscriberStatus.CONFIRMED,
            )
        )
    )


def _among(session: Session, column: Any, ids: Iterable[int]) -> ColumnElement[bool]:
    """`column IN (ids)`; on PostgreSQL `column = ANY(:ids)` with the ids as one array, so the
    statement reads the same for any number of ids: psycopg converts an IN list of a batch's
    500 placeholders anew at every call, a twentieth of a sending worker's CPU (py-spy)."""
    ids = list(ids)
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(literal(ids, ARRAY(Integer)))
    return column.in_(ids)


def _owned(session: Session, ids: Sequence[int], owner: str):  # type: ignore[no-untyped-def]
    return and_(
        _among(session, Delivery.id, ids),
        Delivery.status == DeliveryStatus.SENDING,
        Delivery.lease_owner == owner,
    )


def mark_sent(session: Session, ids: Sequence[int], *, owner: str, now: datetime) -> None:
    if ids:
        session.execute(
            update(Delivery)
            .where(_owned(session, ids, owner))
            .values(status=DeliveryStatus.SENT, sent_at=now, lease_owner=None, last_error=None)
            .execution_options(synchronize_session=False)
        )


def mark_done(
    session: Session,
    ids: Sequence[int],
    status: DeliveryStatus,
    *,
    owner: str,
    error: str | None = None,
) -> int:
    """Finish rows that will not be sent: failed, skipped or cancelled. Returns how many
    were `owner`'s to finish."""
    if not ids:
        return 0
    return (
        session.execute(
            update(Delivery)
            .where(_owned(session, ids, owner))
            .values(status=status, lease_owner=None, last_error=error and error[:300])
            .execution_options(synchronize_session=False)
        ).rowcount
        or 0
    )


def backoff(attempts: int, base: float = 30.0) -> timedelta:
    """Exponential backoff with jitter: about `base` seconds at first, at most MAX_BACKOFF."""
    ceiling = min(MAX_BACKOFF.total_seconds(), base * 2 ** max(0, attempts - 1))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def defer(
    session: Session,
    ids: Sequence[int],
    *,
    owner: str,
    now: datetime,
    delay: timedelta | None = None,
    error: str | None = None,
    retry_base: float = 30.0,
    tried: bool = True,
) -> None:
    """Give rows back for a later try (4xx, an outage, a pause, a shutdown): after `delay`,
    or after a backoff that grows with the row's attempts. `tried=False`: the rows were
    claimed but never offered to the server, so the claim's attempt is taken back."""
    if not ids:
        return
    values = {
        "status": DeliveryStatus.PENDING,
        "lease_owner": None,
        "lease_expires_at": None,
        "last_error": error and error[:300],
    }
    if not tried:
        values["attempts"] = case((Delivery.attempts > 0, Delivery.attempts - 1), else_=0)
    if delay is not None:  # one statement for them all: a pause or shutdown gives back many
        session.execute(
            update(Delivery)
            .where(_owned(session, ids, owner))
            .values(**values, next_attempt_at=now + delay if delay else None)
            .execution_options(synchronize_session=False)
        )
        return
    rows = session.execute(
        select(Delivery.id, Delivery.attempts).where(_owned(session, ids, owner))
    ).all()
    for delivery_id, attempts in rows:
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.lease_owner == owner)
            .values(**values, next_attempt_at=now + backoff(attempts, retry_base))
            .execution_options(synchronize_session=False)
        )


def cancel_leftovers(session: Session) -> int:
    """Rows still owed by cancelled releases (given back by a batch that had not yet seen the
    cancel, or held by a plan that had not) are cancelled too: a cancelled release owes
    nothing, at once or in a digest no run has taken it into."""
    cancelled = select(Release.id).where(Release.status == ReleaseStatus.CANCELLED)
    return (
        session.execute(
            update(Delivery)
            .where(
                or_(
                    Delivery.status == DeliveryStatus.PENDING,
                    and_(Delivery.status == DeliveryStatus.HELD, Delivery.digest_id.is_(None)),
                ),
                Delivery.release_id.in_(cancelled.scalar_subquery()),
            )
            .values(status=DeliveryStatus.CANCELLED, next_attempt_at=None)
            .execution_options(synchronize_session=False)
        ).rowcount
        or 0
    )


def renew_lease(
    session: Session, ids: Sequence[int], *, owner: str, now: datetime, lease: timedelta = LEASE
) -> None:
    if ids:
        session.execute(
            update(Delivery)
            .where(_owned(session, ids, owner))
            .values(lease_expires_at=now + lease)
            .execution_options(synchronize_session=False)
        )


def refusal_report(recipient: Recipient, reply: Reply) -> bounce_policy.Report:
    """A refusal that the batch's judge (refusals.RefusalJudge) laid on one reader, as the
    bounce policy's report: the same table decides for a refusal during the SMTP
    conversation as for a bounce that comes back later, and both for one delivery count
    once."""
    return bounce_policy.Report(
        door=ReportDoor.RELAY,
        action="failed",
        status=reply.enhanced or None,
        diagnostic=reply.text,
        delivery_id=recipient.delivery_id,
    )


@dataclass(frozen=True)
class ExpiredLease:
    delivery_id: int
    owner: str


def expired_leases(session: Session, *, now: datetime, limit: int = 10_000) -> list[ExpiredLease]:
    """Rows whose worker vanished while holding them, with the lease owner that held them."""
    return [
        ExpiredLease(row.id, row.lease_owner or "")
        for row in session.execute(
            select(Delivery.id, Delivery.lease_owner)
            .where(Delivery.status == DeliveryStatus.SENDING, Delivery.lease_expires_at < now)
            .order_by(Delivery.lease_owner, Delivery.id)
            .limit(limit)
        )
    ]


def reclaim(session: Session, sent_ids: set[int], expired: Sequence[int], *, now: datetime) -> None:
    """Rows of a vanished worker: those it recorded as sent (in Redis) are sent; the rest owed."""
    done = [i for i in expired if i in sent_ids]
    owed = [i for i in expired if i not in sent_ids]
    if done:
        session.execute(
            update(Delivery)
            .where(_among(session, Delivery.id, done), Delivery.status == DeliveryStatus.SENDING)
            .values(status=DeliveryStatus.SENT, sent_at=now, lease_owner=None)
            .execution_options(synchronize_session=False)
        )
    if owed:
        session.execute(
            update(Delivery)
            .where(_among(session, Delivery.id, owed), Delivery.status == DeliveryStatus.SENDING)
            .values(status=DeliveryStatus.PENDING, lease_owner=None, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )


def _pending_count(session: Session, release_id: int, when: ColumnElement[bool]) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(
                Delivery.release_id == release_id, Delivery.status == DeliveryStatus.PENDING, when
            )
        )
        or 0
    )


def due_count(session: Session, release_id: int, *, now: datetime) -> int:
    """Rows owed that may go out now."""
    return _pending_count(
        session,
        release_id,
        or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
    )


def deferred_count(session: Session, release_id: int, *, now: datetime) -> int:
    """Rows owed that wait for a retry after a temporary refusal."""
    return _pending_count(session, release_id, Delivery.next_attempt_at > now)


def in_progress(session: Session, release_id: int, *, now: datetime) -> bool:
    """Whether some worker holds a live lease on rows of this release."""
    return bool(
        session.scalar(
            select(Delivery.id)
            .where(
                Delivery.release_id == release_id,
                Delivery.status == DeliveryStatus.SENDING,
                Delivery.lease_expires_at >= now,
            )
            .limit(1)
        )
    )


def open_count(session: Session, release_id: int) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(
                Delivery.release_id == release_id,
                Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]),
            )
        )
        or 0
    )


def finish_if_done(session: Session, release: Release, *, now: datetime) -> bool:
    """Mark a sending release sent once planning is over and no row is owed."""
    if release.status is not ReleaseStatus.SENDING or release.planned_at is None:
        return False
    if open_count(session, release.id):
        return False
    won = session.execute(
        update(Release)
        .where(Release.id == release.id, Release.status == ReleaseStatus.SENDING)
        .values(status=ReleaseStatus.SENT, send_finished_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(release)
    if won and release.kind is ReleaseKind.DIGEST:
        digests.settle(session, release.id)
    elif won:
        webhook_outbox.release_changed(session, EventType.RELEASE_SENT, release, now=now)
    return bool(won)


def releases_in(session: Session, *states: ReleaseStatus) -> list[Release]:
    return list(session.scalars(select(Release).where(Release.status.in_(states))))


def due_scheduled(session: Session, *, now: datetime) -> list[int]:
    return list(
        session.scalars(
            select(Release.id).where(
                Release.status == ReleaseStatus.SCHEDULED, Release.publish_at <= now
            )
        )
    )


@dataclass(frozen=True)
class Failure:
    """A delivery that failed for good: the reader's stored address, and why (the server's
    reply, or refusals.NO_SMTPUTF8)."""

    email: str
    reason: str | None


def failures(session: Session, release_id: int, *, limit: int = FAILURES_SHOWN) -> list[Failure]:
    """The first `limit` failed deliveries of a release, in the order they were planned."""
    rows = session.execute(
        select(Subscriber.email, Delivery.last_error)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.release_id == release_id, Delivery.status == DeliveryStatus.FAILED)
        .order_by(Delivery.id)
        .limit(limit)
    ).all()
    return [Failure(email, reason) for email, reason in rows]


SessionFactory = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class Claim:
    """What a batch took: the release as it stands, the readers to send to, and how many
    claimed rows were skipped at once (their reader left before the batch began)."""

    release: Release
    recipients: list[Recipient]
    skipped: int
    # A digest run's claim: what each reader's digest lists, by uid (digests.listings).
    listings: dict[str, list[Listed]] | None = None


class SqlLedger:
    """The ledger of one batch (`owner`, its lease) on the database behind `open_session`
    (a context manager that commits on success, e.g. service.db.session_scope)."""

    def __init__(
        self,
        open_session: SessionFactory,
        *,
        owner: str,
        lease: timedelta = LEASE,
        limits: send_guards.Limits = DEFAULT_LIMITS,
    ):
        self.open_session = open_session
        self.owner = owner
        self.lease = lease
        self.limits = limits  # the send guards, judged after refusals that blame readers

    def claim(self, release_id: int, *, limit: int) -> Claim | None:
        with self.open_session() as session:
            release = session.get(Release, release_id)
            if release is None or release.status is not ReleaseStatus.SENDING:
                return None
            claimed = claim(
                session, release_id, owner=self.owner, limit=limit, now=utcnow(), lease=self.lease
            )
            keep, skip = recipients(session, claimed)
            keep, missed = threaded(session, release, keep)
            skip += missed
            listed = None
            if release.kind is ReleaseKind.DIGEST:
                # The claim alone decides what each digest lists (settle copies its outcome):
                # releases not going out now, and the rows of readers who left, go back.
                left = {c.subscriber_id for c in claimed} - {r.subscriber_id for r in keep}
                digests.take_back(session, release.id, [r.subscriber_id for r in keep], left)
                by_reader = digests.listings(session, release.id, [r.subscriber_id for r in keep])
                skip += [r.delivery_id for r in keep if r.subscriber_id not in by_reader]
                keep = [r for r in keep if r.subscriber_id in by_reader]
                listed = {r.uid: by_reader[r.subscriber_id] for r in keep}
            mark_done(session, skip, DeliveryStatus.SKIPPED, owner=self.owner)
            return Claim(release, keep, len(skip), listed)

    def status(self, release_id: int) -> ReleaseStatus:
        with self.open_session() as session:
            status = session.scalar(select(Release.status).where(Release.id == release_id))
            return status if status is not None else ReleaseStatus.CANCELLED

    def still_confirmed(self, subscriber_ids: Iterable[int]) -> set[int]:
        with self.open_session() as session:
            return still_confirmed(session, subscriber_ids)

    def record_sent(self, delivery_ids: Sequence[int], *, renew: Sequence[int]) -> None:
        if not delivery_ids and not renew:
            return
        with self.open_session() as session:
            now = utcnow()
            mark_sent(session, delivery_ids, owner=self.owner, now=now)
            renew_lease(session, renew, owner=self.owner, now=now, lease=self.lease)

    def finish(
        self, delivery_ids: Sequence[int], status: DeliveryStatus, *, error: str | None = None
    ) -> None:
        with self.open_session() as session:
            mark_done(session, delivery_ids, status, owner=self.owner, error=error)

    def fail(self, refused: Sequence[tuple[Recipient, Reply]], *, blame: bool) -> None:
        with self.open_session() as session:
            reports = []
            for recipient, reply in refused:
                finished = mark_done(
                    session,
                    [recipient.delivery_id],
                    DeliveryStatus.FAILED,
                    owner=self.owner,
                    error=str(reply),
                )
                if finished and blame:  # a row whose lease was lost is another's to judge
                    reports.append(refusal_report(recipient, reply))
            taken = self._take_refusals(session, reports) if reports else []
        meters.count_reports(taken)  # once committed

    def _take_refusals(
        self, session: Session, reports: list[bounce_policy.Report]
    ) -> list[bounce_policy.Taken]:
        """The bounce policy for refusals laid on readers, then the send guards, in a
        savepoint: should they fail (a lock on a reader's score, a reader erased at that
        moment), the deliveries still fail, the error is logged and the batch goes on."""
        now = utcnow()
        try:
            with session.begin_nested():
                taken = [bounce_policy.take(session, report, now=now) for report in reports]
                for release_id in {t.release_id for t in taken if t.release_id and t.outcome}:
                    guard = send_guards.check(session, release_id, self.limits)
                    if guard is not None:
                        log.warning("release %s paused by the %s guard", release_id, guard.value)
        except SQLAlchemyError:
            log.exception(
                "refusals of deliveries %s failed them, but were not applied to their readers",
                [report.delivery_id for report in reports],
            )
            return []
        return taken

    def retry_later(self, deferred: Sequence[tuple[Recipient, str]], *, base: float) -> None:
        with self.open_session() as session:
            now = utcnow()
            for recipient, error in deferred:
                defer(
                    session,
                    [recipient.delivery_id],
                    owner=self.owner,
                    now=now,
                    error=error,
                    retry_base=base,
                )

    def give_back(
        self,
        tried: Sequence[Recipient],
        untried: Sequence[Recipient],
        *,
        delay: timedelta,
        error: str | None = None,
        tried_error: str | None = None,
    ) -> None:
        with self.open_session() as session:
            self._give_back(session, tried, untried, delay, tried_error or error, error)

    def halt(
        self,
        release_id: int,
        tried: Sequence[Recipient],
        untried: Sequence[Recipient],
        *,
        reason: str,
        tried_error: str | None = None,
        untried_error: str | None = None,
    ) -> None:
        with self.open_session() as session:
            self._give_back(session, tried, untried, timedelta(0), tried_error, untried_error)
            release = session.get(Release, release_id)
            if release is not None and release.status is ReleaseStatus.SENDING:
                releases.pause(session, release_id, reason=reason, now=utcnow())

    def _give_back(
        self,
        session: Session,
        tried: Sequence[Recipient],
        untried: Sequence[Recipient],
        delay: timedelta,
        tried_error: str | None,
        untried_error: str | None,
    ) -> None:
        now = utcnow()
        for rows, was_tried, error in ((tried, True, tried_error), (untried, False, untried_error)):
            defer(
                session,
                [r.delivery_id for r in rows],
                owner=self.owner,
                now=now,
                delay=delay,
                error=error,
                tried=was_tried,
            )
