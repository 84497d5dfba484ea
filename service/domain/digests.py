"""Digests: a daily or weekly email listing the releases held for a reader since their last.

How it holds together (GOV.UK email-alert-api's digest runs, on Pressroom's one ledger):

- A release's send plans a delivery row for every matching reader; a daily or weekly reader's
  row is HELD instead of pending (sending.ledger.plan_chunk): the release is then "sent" for
  readers who want every release, and owed in a digest to the rest.
- At DIGEST_HOUR in TIMEZONE (weekly ones on DIGEST_WEEKDAY) the sweep opens a digest run: a
  Release of kind DIGEST, unique per frequency and due time, sent by the same pipeline as a
  release (leases, journal, sweep; CONTRACT §8). Its planning gives each reader with held
  rows one delivery row, and marks their held rows of releases published by the due time as
  listed in it (`digest_id`), in one transaction per chunk: a crash re-plans nothing twice.
- The reader's message lists exactly those rows (digest_messages); when the run ends, each
  listed row takes the outcome of the reader's digest (sent, failed, skipped).

A daily run takes the held rows of daily readers and of readers who switched to
"immediately" since (their last digest is owed once more, so nothing is lost or sent twice);
a weekly run those of weekly readers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, exists, func, literal, select, update
from sqlalchemy.orm import Session, aliased

from service.db import insert_for
from service.domain.digest_messages import Listed
from service.domain.errors import N_, DomainError, InvalidInput
from service.locales import LANGUAGES, PRIMARY_LANGUAGE
from service.models import (
    Delivery,
    DeliveryStatus,
    Frequency,
    Release,
    ReleaseKind,
    ReleaseStatus,
    Subscriber,
    SubscriberStatus,
)

DIGEST_FREQUENCIES = (Frequency.DAILY, Frequency.WEEKLY)
# Whose held rows a run of each frequency takes: see the module's docstring.
READERS_OF = {
    Frequency.DAILY: (Frequency.DAILY.value, Frequency.IMMEDIATELY.value),
    Frequency.WEEKLY: (Frequency.WEEKLY.value,),
}
PLAN_CHUNK = 5_000
# A release whose held rows a digest may list: sending or sent (not paused, not cancelled).
GOING_OUT = (ReleaseStatus.SENDING, ReleaseStatus.SENT)


class ClockFileUnreadable(DomainError):
    """DIGEST_CLOCK_FILE is set but holds no ISO 8601 time with an offset."""

    code = "clock_file_unreadable"


@dataclass(frozen=True)
class DigestSchedule:
    """When digests are due: `hour` (0-23) in `zone`, weekly ones on `weekday` (0 is Monday).
    Local times follow the zone's daylight saving rules: 08:00 stays 08:00 in summer."""

    hour: int
    weekday: int
    zone: ZoneInfo

    def latest_due(self, frequency: Frequency, now: datetime) -> datetime:
        """The last time at or before `now` a digest of `frequency` was due, in UTC."""
        local_day = now.astimezone(self.zone).date()
        if frequency is Frequency.WEEKLY:
            local_day -= timedelta(days=(local_day.weekday() - self.weekday) % 7)
        step = timedelta(days=7 if frequency is Frequency.WEEKLY else 1)
        due = datetime.combine(local_day, time(self.hour), tzinfo=self.zone)
        if due > now:
            due = datetime.combine(local_day - step, time(self.hour), tzinfo=self.zone)
        return due.astimezone(UTC)


def read_clock(path: str) -> datetime:
    """The time in a DIGEST_CLOCK_FILE: ISO 8601 with an offset ("2026-12-07T08:00:05+01:00").
    Raises ClockFileUnreadable."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
        moment = datetime.fromisoformat(text)
    except (OSError, ValueError) as error:
        raise ClockFileUnreadable(f"DIGEST_CLOCK_FILE: {error}") from None
    if moment.tzinfo is None:
        raise ClockFileUnreadable("DIGEST_CLOCK_FILE holds a time without an offset.")
    return moment.astimezone(UTC)


def _waiting(frequency: Frequency, due_at: datetime):  # type: ignore[no-untyped-def]
    """Held rows no run has taken yet, of releases published by `due_at` and going out (a
    paused send waits for its resume, a cancelled one owes nothing), of confirmed readers
    whose digests `frequency` runs carry (conditions on Delivery)."""
    return and_(
        Delivery.status == DeliveryStatus.HELD,
        Delivery.digest_id.is_(None),
        exists().where(
            Release.id == Delivery.release_id,
            Release.published_at <= due_at,
            Release.status.in_(GOING_OUT),
        ),
        exists().where(
            Subscriber.id == Delivery.subscriber_id,
            Subscriber.status == SubscriberStatus.CONFIRMED,
            Subscriber.frequency.in_(READERS_OF[frequency]),
        ),
    )


def anything_waiting(session: Session, frequency: Frequency, due_at: datetime) -> bool:
    """Whether a run of `frequency` due at `due_at` would list anything (`_waiting`). Asked
    from the releases' side, each through its own rows' index: a sweep asks it often."""
    held = exists().where(
        Delivery.release_id == Release.id,
        Delivery.status == DeliveryStatus.HELD,
        _waiting(frequency, due_at),
    )
    going = select(Release.id).where(
        Release.kind == ReleaseKind.RELEASE,
        Release.published_at <= due_at,
        Release.status.in_(GOING_OUT),
        held,
    )
    return session.scalar(going.limit(1)) is not None


def open_run(
    session: Session, frequency: Frequency, due_at: datetime, *, now: datetime
) -> int | None:
    """The digest run of `frequency` due at `due_at`, as a sending Release of kind DIGEST;
    None when that run exists already (one per frequency and due time, whoever asks)."""
    stamp = due_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    statement = (
        insert_for(session, Release)
        .values(
            slug=f"digest-{frequency.value}-{stamp}",
            title=f"{frequency.value} digest {stamp}",
            language=PRIMARY_LANGUAGE,
            kind=ReleaseKind.DIGEST,
            digest_frequency=frequency.value,
            digest_due_at=due_at,
            status=ReleaseStatus.SENDING,
            published_at=now,
            send_started_at=now,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing()
        .returning(Release.id)
    )
    return session.scalar(statement)


def open_due_runs(
    session: Session, schedule: DigestSchedule, *, now: datetime, opened_at: datetime
) -> list[int]:
    """The runs due by `now` (DigestSchedule.latest_due) that are not open yet and have
    something to list; `opened_at` is the real time they start. Returns their ids: each owes
    a START_RELEASE."""
    opened = []
    for frequency in DIGEST_FREQUENCIES:
        due_at = schedule.latest_due(frequency, now)
        exists_already = session.scalar(
            select(Release.id).where(
                Release.digest_frequency == frequency.value, Release.digest_due_at == due_at
            )
        )
        if exists_already is None and anything_waiting(session, frequency, due_at):
            run_id = open_run(session, frequency, due_at, now=opened_at)
            if run_id is not None:
                opened.append(run_id)
    return opened


def open_runs_now(
    session: Session, frequencies: tuple[Frequency, ...], *, now: datetime
) -> dict[Frequency, int | None]:
    """`digests send`: a run of each frequency due now, listing everything held so far;
    None for a frequency with nothing to list."""
    due_at = now
    return {
        frequency: open_run(session, frequency, due_at, now=now)
        if anything_waiting(session, frequency, due_at)
        else None
        for frequency in frequencies
    }


def latest_runs(session: Session, *, limit: int = 10) -> list[Release]:
    """The last `limit` digest runs, newest first (the desk's list)."""
    return list(
        session.scalars(
            select(Release)
            .where(Release.kind == ReleaseKind.DIGEST)
            .order_by(Release.id.desc())
            .limit(limit)
        )
    )


def plan_chunk(session: Session, run: Release, *, now: datetime, chunk: int = PLAN_CHUNK) -> int:
    """Plan the next chunk of a digest run's readers (keyset on subscriber id, checkpoint on
    the run, as sending.ledger.plan_chunk): a delivery row for each reader with rows waiting
    (`_waiting`), and those rows marked as listed in this run. Returns rows added."""
    frequency = Frequency(run.digest_frequency)
    due_at = run.digest_due_at
    assert due_at is not None
    # Planners of one run take turns (a sweep restarting a slow plan, `digests send`): each
    # chunk starts from the checkpoint as committed, under the run's row lock (PostgreSQL).
    session.refresh(run, with_for_update=True)
    if run.planned_at is not None:
        return 0
    start = run.last_subscriber_id
    waits = exists().where(Delivery.subscriber_id == Subscriber.id, _waiting(frequency, due_at))
    readers = [Subscriber.id > start, waits]
    upper = session.scalar(
        select(Subscriber.id).where(*readers).order_by(Subscriber.id).offset(chunk - 1).limit(1)
    )
    done = upper is None
    if done:
        upper = session.scalar(select(func.max(Subscriber.id))) or start
    language = case(
        (Subscriber.language.in_(LANGUAGES), Subscriber.language), else_=literal(PRIMARY_LANGUAGE)
    )
    rows = select(
        literal(run.id),
        Subscriber.id,
        language,
        literal(DeliveryStatus.PENDING.value),
        literal(0),
    ).where(*readers, Subscriber.id <= upper)
    added = list(
        session.scalars(
            insert_for(session, Delivery)
            .from_select(["release_id", "subscriber_id", "language", "status", "attempts"], rows)
            .on_conflict_do_nothing(index_elements=["release_id", "subscriber_id"])
            .returning(Delivery.subscriber_id)
        )
    )
    # Only the readers whose digest row this statement made: a reader whose digest is
    # already claimed (or sent) must not have rows listed in it that it does not show.
    for part in range(0, len(added), 1000):
        session.execute(
            update(Delivery)
            .where(
                _waiting(frequency, due_at),
                Delivery.subscriber_id.in_(added[part : part + 1000]),
            )
            .values(digest_id=run.id)
            .execution_options(synchronize_session=False)
        )
    run.last_subscriber_id = max(run.last_subscriber_id, upper)
    if done:
        run.planned_at = now
    session.flush()
    return len(added)


def listings(session: Session, run_id: int, subscriber_ids: list[int]) -> dict[int, list[Listed]]:
    """What each reader's digest in run `run_id` lists, newest first, by subscriber id."""
    if not subscriber_ids:
        return {}
    rows = session.execute(
        select(Delivery.subscriber_id, Delivery.language, Release)
        .join(Release, Release.id == Delivery.release_id)
        .where(
            Delivery.digest_id == run_id,
            Delivery.status == DeliveryStatus.HELD,
            Delivery.subscriber_id.in_(subscriber_ids),
        )
        .order_by(Release.published_at.desc(), Release.id.desc())
    ).all()
    listed: dict[int, list[Listed]] = {}
    for subscriber_id, language, release in rows:
        version = release.version(language) or release.version(release.language)
        listed.setdefault(subscriber_id, []).append(
            Listed(
                release_id=release.id,
                slug=release.slug,
                language=language if release.version(language) else release.language,
                title=version["title"],
                summary=version["summary"],
                published_at=release.published_at or release.created_at,
                correction=release.corrects_id is not None,
            )
        )
    return listed


def take_back(session: Session, run_id: int, readers: list[int], left: Iterable[int] = ()) -> None:
    """At a digest's claim: the rows listed for `readers` of releases not going out now
    (paused or cancelled since the run took them), and every row listed for readers who
    `left` (no longer confirmed: an undo within the day gets them in the next digest), go
    back to waiting. What stays is exactly what their digests list (`listings`)."""
    listed = and_(Delivery.digest_id == run_id, Delivery.status == DeliveryStatus.HELD)
    not_going = ~exists().where(Release.id == Delivery.release_id, Release.status.in_(GOING_OUT))
    gone = list(left)
    for subscriber_ids, condition in ((readers, not_going), (gone, None)):
        if not subscriber_ids:
            continue
        where = [listed, Delivery.subscriber_id.in_(subscriber_ids)]
        if condition is not None:
            where.append(condition)
        session.execute(
            update(Delivery)
            .where(*where)
            .values(digest_id=None)
            .execution_options(synchronize_session=False)
        )


def settle(session: Session, run_id: int) -> int:
    """Listed rows of run `run_id` whose reader's digest is done take its outcome: sent (with
    its time), failed or skipped; those of a reader whose digest was cancelled go back to
    waiting for the next digest. Rows of readers whose digest is still owed stay. What a
    digest lists is decided at its claim alone (`take_back`), so this never looks at the
    releases. The sweep calls it for every run with such rows, and a run as it ends: a reader
    whose digest is out counts as having the release (corrections) within a sweep. Returns
    rows settled."""
    own = aliased(Delivery)
    mine = and_(own.release_id == run_id, own.subscriber_id == Delivery.subscriber_id)
    listed = and_(Delivery.digest_id == run_id, Delivery.status == DeliveryStatus.HELD)
    taken_back = session.execute(
        update(Delivery)
        .where(listed, exists().where(mine, own.status == DeliveryStatus.CANCELLED))
        .values(digest_id=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    done = exists().where(
        mine,
        own.status.in_([DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.SKIPPED]),
    )
    settled = session.execute(
        update(Delivery)
        .where(listed, done)
        .values(
            status=select(own.status).where(mine).scalar_subquery(),
            sent_at=select(own.sent_at).where(mine).scalar_subquery(),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    return (taken_back or 0) + (settled or 0)


def unsettled_runs(session: Session) -> list[int]:
    """Digest runs that still list held rows: the sweep settles them (`settle`)."""
    return list(
        session.scalars(
            select(Delivery.digest_id)
            .where(Delivery.status == DeliveryStatus.HELD, Delivery.digest_id.is_not(None))
            .distinct()
            .order_by(Delivery.digest_id)  # two sweeps at once take runs in the same order
        )
    )


def skip_for_readers_gone(session: Session, *, now: datetime, after: timedelta) -> int:
    """Held rows no digest has taken, of readers off the list for longer than `after` (the
    undo's 24 hours: an undo within them gets them in the next digest), are skipped: they
    left before it went out. Returns rows."""
    gone = select(Subscriber.id).where(
        Subscriber.status != SubscriberStatus.CONFIRMED, Subscriber.updated_at < now - after
    )
    return (
        session.execute(
            update(Delivery)
            .where(
                Delivery.status == DeliveryStatus.HELD,
                Delivery.digest_id.is_(None),
                Delivery.subscriber_id.in_(gone),
            )
            .values(status=DeliveryStatus.SKIPPED)
            .execution_options(synchronize_session=False)
        ).rowcount
        or 0
    )


def forget_held(session: Session, subscriber_id: int) -> int:
    """A reader who confirms a new subscription starts afresh: what was held for them before
    they left (no digest has it yet) is skipped, not sent months late. Returns rows."""
    return (
        session.execute(
            update(Delivery)
            .where(
                Delivery.subscriber_id == subscriber_id,
                Delivery.status == DeliveryStatus.HELD,
                Delivery.digest_id.is_(None),
            )
            .values(status=DeliveryStatus.SKIPPED)
            .execution_options(synchronize_session=False)
        ).rowcount
        or 0
    )


_FREQUENCY = re.compile(r"^(immediately|daily|weekly)$")


def parse_frequency(raw: object, *, default: Frequency | None = Frequency.IMMEDIATELY) -> Frequency:
    """A reader's choice as a form, the API or a CSV gives it ("immediately", "daily",
    "weekly", any case); `default` when absent. Raises InvalidFrequency."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if default is None:
            raise InvalidFrequency()
        return default
    if isinstance(raw, str) and _FREQUENCY.match(raw.strip().lower()):
        return Frequency(raw.strip().lower())
    raise InvalidFrequency()


class InvalidFrequency(InvalidInput):
    code = "invalid_frequency"
    message = N_("How often must be immediately, daily or weekly.")
