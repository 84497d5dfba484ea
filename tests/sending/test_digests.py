"""Digests through the real ledger and batch loop (domain/digests): a release is held for
daily and weekly readers, a digest run lists it once per reader in their language, and the
listed rows take the digest's outcome. The schedule's arithmetic is tested here too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from zoneinfo import ZoneInfo

import pytest
import redis
from sqlalchemy import select, update

from service.db import Database, utcnow
from service.domain import digests, releases, subscriptions
from service.models import (
    ConsentSource,
    Delivery,
    DeliveryStatus,
    Frequency,
    Release,
    ReleaseKind,
    ReleaseStatus,
    Subscriber,
    SubscriberTopic,
)
from service.sending import ledger
from service.sending.batch import BatchSender
from service.sending.journal import SendJournal
from service.sending.ledger import SqlLedger
from service.sending.messages import Composer
from service.sending.rate import Unlimited
from tests.sending.parts import RecordingTransport, add_readers

OSLO = ZoneInfo("Europe/Oslo")
OWNER = "spec-host:1:digests"


def schedule(hour: int = 8, weekday: int = 0) -> digests.DigestSchedule:
    return digests.DigestSchedule(hour, weekday, OSLO)


@pytest.mark.parametrize(
    ("now", "daily", "weekly"),
    [
        # Tuesday 1 December 2026, 09:00 in Oslo (UTC+1): today's 08:00; Monday's 08:00.
        ("2026-12-01T09:00+01:00", "2026-12-01T07:00Z", "2026-11-30T07:00Z"),
        # 07:59: yesterday's; the week's turn was the day before yesterday.
        ("2026-12-01T07:59+01:00", "2026-11-30T07:00Z", "2026-11-30T07:00Z"),
        # Monday 30 November, 07:59: last Monday's.
        ("2026-11-30T07:59+01:00", "2026-11-29T07:00Z", "2026-11-23T07:00Z"),
        # Summer time: 08:00 in Oslo is 06:00 UTC.
        ("2026-07-01T12:00+02:00", "2026-07-01T06:00Z", "2026-06-29T06:00Z"),
        # The night the clocks go forward (29 March 2026): 08:00 is still 08:00.
        ("2026-03-29T09:00+02:00", "2026-03-29T06:00Z", "2026-03-23T07:00Z"),
    ],
)
def test_a_digest_is_due_at_the_hour_in_the_site_time_zone(
    now: str, daily: str, weekly: str
) -> None:
    moment = datetime.fromisoformat(now)
    assert schedule().latest_due(Frequency.DAILY, moment) == datetime.fromisoformat(daily)
    assert schedule().latest_due(Frequency.WEEKLY, moment) == datetime.fromisoformat(weekly)


def test_the_clock_file_must_hold_a_time_with_an_offset(tmp_path) -> None:  # type: ignore[no-untyped-def]
    clock = tmp_path / "clock"
    clock.write_text("2026-12-07T08:00:05+01:00\n")
    assert digests.read_clock(str(clock)) == datetime(2026, 12, 7, 7, 0, 5, tzinfo=UTC)
    clock.write_text("2026-12-07T08:00:05")
    with pytest.raises(digests.ClockFileUnreadable):
        digests.read_clock(str(clock))
    with pytest.raises(digests.ClockFileUnreadable):
        digests.read_clock(str(tmp_path / "missing"))


def reader(db: Database, email: str, frequency: Frequency, *, language: str = "nb", topics=()):  # type: ignore[no-untyped-def]
    (subscriber_id,) = add_readers(db, [email], language=language)
    with db.session_scope() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        assert subscriber is not None
        subscriber.frequency = frequency
        subscriber.topic_rows = [SubscriberTopic(topic=t) for t in topics]
    return subscriber_id


def publish(
    db: Database,
    title: str,
    *,
    at: datetime,
    topics=(),
    english: str | None = None,
    corrects: int | None = None,
) -> int:  # type: ignore[no-untyped-def]
    """A release as publishing leaves it, then planned (ledger.plan_chunk)."""
    with db.session_scope() as session:
        release = Release(
            slug=f"r-{title.lower().replace(' ', '-')}",
            title=title,
            summary=f"Om {title}",
            body="Tekst",
            body_html="<p>Tekst</p>",
            language="nb",
            topics=list(topics),
            translations={
                "en": {
                    "title": english,
                    "summary": "About",
                    "body": "Text",
                    "body_html": "<p>Text</p>",
                }
            }
            if english
            else {},
            status=ReleaseStatus.SENDING,
            published_at=at,
            send_started_at=at,
            corrects_id=corrects,
        )
        session.add(release)
        session.flush()
        while release.planned_at is None:
            ledger.plan_chunk(session, release, now=at)
        return release.id


def send(
    db: Database,
    release_id: int,
    transport: RecordingTransport,
    redis_client: redis.Redis,
    composer: Composer,
) -> None:
    sender = BatchSender(
        ledger=SqlLedger(db.session_scope, owner=OWNER, lease=timedelta(seconds=60)),
        transport=transport,
        journal=SendJournal(redis_client, OWNER),
        limiter=Unlimited(),
        messages=lambda release, language: composer.release_message(
            release, language, now=utcnow()
        ),
        digests=composer.digest_messages,
        mail_from="Pressroom <noreply@press.example>",
    )
    while sender.run(release_id).more:
        pass
    with db.session_scope() as session:
        release = session.get(Release, release_id)
        assert release is not None
        ledger.finish_if_done(session, release, now=utcnow())


def run_digest(db: Database, frequency: Frequency, due_at: datetime) -> int | None:
    with db.session_scope() as session:
        run_id = digests.open_run(session, frequency, due_at, now=utcnow())
        if run_id is None:
            return None
        run = session.get(Release, run_id)
        assert run is not None
        while run.planned_at is None:
            ledger.plan_chunk(session, run, now=utcnow())
        return run_id


def statuses(db: Database, release_id: int) -> dict[int, DeliveryStatus]:
    with db.session_scope() as session:
        return dict(
            session.execute(
                select(Delivery.subscriber_id, Delivery.status).where(
                    Delivery.release_id == release_id
                )
            ).all()
        )


DAY1 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_a_release_is_held_for_digest_readers_and_sent_in_their_next_digest(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer
) -> None:
    at_once = reader(db, "now@mail.example", Frequency.IMMEDIATELY)
    daily = reader(db, "daily@mail.example", Frequency.DAILY, topics=["space", "science"])
    daily_en = reader(db, "daily-en@mail.example", Frequency.DAILY, language="en")
    weekly = reader(db, "weekly@mail.example", Frequency.WEEKLY)
    gagarin = publish(
        db, "Gagarin", at=DAY1, topics=["space", "science"], english="Gagarin in English"
    )
    send(db, gagarin, transport, redis_client, composer)
    assert transport.addressed == ["now@mail.example"]
    held = statuses(db, gagarin)
    assert held[at_once] is DeliveryStatus.SENT
    assert {held[daily], held[daily_en], held[weekly]} == {DeliveryStatus.HELD}
    with db.session_scope() as session:
        assert session.get(Release, gagarin).status is ReleaseStatus.SENT  # type: ignore[union-attr]
        counts = releases.delivery_counts(session, gagarin)
    assert (counts["sent"], counts["total"], counts["held"], counts["in_digests"]) == (1, 1, 3, 3)
    assert counts["at_once"] == 1

    tereshkova = publish(db, "Tereshkova", at=DAY1 + timedelta(hours=2))
    send(db, tereshkova, transport, redis_client, composer)
    run = run_digest(db, Frequency.DAILY, DAY1 + timedelta(days=1))
    assert run is not None
    assert run_digest(db, Frequency.DAILY, DAY1 + timedelta(days=1)) is None  # one per due time
    transport.calls.clear()
    send(db, run, transport, redis_client, composer)
    by_address = {
        call.recipients[0]: message_from_bytes(call.data, policy=policy.default)
        for call in transport.calls
    }
    assert sorted(by_address) == ["daily-en@mail.example", "daily@mail.example"]  # once each
    norwegian = by_address["daily@mail.example"]
    text = norwegian.get_body(("plain",)).get_content()
    # Newest first; the reader who matched Gagarin through two topics sees it once.
    assert text.index("Tereshkova") < text.index("Gagarin")
    assert text.count("/releases/r-gagarin?") == 1
    assert norwegian["Message-ID"].startswith(f"<release-{run}.")
    assert "/unsubscribe/" in norwegian["List-Unsubscribe"]
    assert norwegian["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    english = by_address["daily-en@mail.example"].get_body(("plain",)).get_content()
    assert "Gagarin in English" in english and "?lang=en" in english
    assert "Tereshkova" in english  # no English version: the primary one stands in

    listed = statuses(db, gagarin)
    assert listed[daily] is DeliveryStatus.SENT and listed[daily_en] is DeliveryStatus.SENT
    assert listed[weekly] is DeliveryStatus.HELD  # the week is not over
    with db.session_scope() as session:
        counts = releases.delivery_counts(session, gagarin)
        assert session.get(Release, run).status is ReleaseStatus.SENT  # type: ignore[union-attr]
    assert (counts["sent"], counts["held"], counts["in_digests"], counts["at_once"]) == (3, 1, 3, 1)
    # Digest runs are not releases of the press office's: not on the desk's list, not public.
    with db.session_scope() as session:
        assert run not in {r.id for r in releases.newest_releases(session, limit=50)}


def test_a_reader_who_switches_to_immediately_gets_what_was_held_in_one_last_digest(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer
) -> None:
    switcher = reader(db, "switch@mail.example", Frequency.DAILY)
    morning = publish(db, "Morning", at=DAY1)
    send(db, morning, transport, redis_client, composer)
    with db.session_scope() as session:
        session.execute(
            update(Subscriber)
            .where(Subscriber.id == switcher)
            .values(frequency=Frequency.IMMEDIATELY)
        )
    afternoon = publish(db, "Afternoon", at=DAY1 + timedelta(hours=4))
    send(db, afternoon, transport, redis_client, composer)
    assert transport.addressed == ["switch@mail.example"]  # Afternoon, at once
    run = run_digest(db, Frequency.DAILY, DAY1 + timedelta(days=1))
    assert run is not None
    send(db, run, transport, redis_client, composer)
    assert transport.addressed == ["switch@mail.example"] * 2
    digest = transport.calls[1].data.decode()
    assert "Morning" in digest and "Afternoon" not in digest
    assert statuses(db, morning)[switcher] is DeliveryStatus.SENT
    with db.session_scope() as session:  # nothing more is owed in a digest
        assert not digests.anything_waiting(session, Frequency.DAILY, DAY1 + timedelta(days=9))


def test_a_run_lists_only_releases_published_by_its_due_time_and_nothing_twice(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer
) -> None:
    weekly = reader(db, "weekly@mail.example", Frequency.WEEKLY)
    early = publish(db, "Early", at=DAY1)
    late = publish(db, "Late", at=DAY1 + timedelta(days=3))
    due = DAY1 + timedelta(days=1)
    with db.session_scope() as session:
        assert not digests.anything_waiting(session, Frequency.DAILY, due)  # a weekly reader
        assert digests.anything_waiting(session, Frequency.WEEKLY, due)
    first = run_digest(db, Frequency.WEEKLY, due)
    assert first is not None
    send(db, first, transport, redis_client, composer)
    assert [("Early" in c.data.decode(), "Late" in c.data.decode()) for c in transport.calls] == [
        (True, False)
    ]
    second = run_digest(db, Frequency.WEEKLY, due + timedelta(days=7))
    assert second is not None
    send(db, second, transport, redis_client, composer)
    assert (
        "Late" in transport.calls[1].data.decode()
        and "Early" not in transport.calls[1].data.decode()
    )
    assert statuses(db, early)[weekly] is statuses(db, late)[weekly] is DeliveryStatus.SENT
    with db.session_scope() as session:
        assert not digests.anything_waiting(session, Frequency.WEEKLY, due + timedelta(days=30))
        kinds = set(session.scalars(select(Release.kind).where(Release.id.in_([first, second]))))
    assert kinds == {ReleaseKind.DIGEST}


def test_a_reader_who_left_gets_no_digest_and_a_cancelled_release_owes_none(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer
) -> None:
    daily = reader(db, "daily@mail.example", Frequency.DAILY)
    cancelled = publish(db, "Withdrawn", at=DAY1)
    with db.session_scope() as session:
        releases.cancel(session, cancelled, now=utcnow())
    assert statuses(db, cancelled)[daily] is DeliveryStatus.CANCELLED
    with db.session_scope() as session:
        assert not digests.anything_waiting(session, Frequency.DAILY, DAY1 + timedelta(days=1))
    kept = publish(db, "Kept", at=DAY1)
    with db.session_scope() as session:
        session.execute(
            update(Subscriber).where(Subscriber.id == daily).values(status="unsubscribed")
        )
        assert not digests.anything_waiting(session, Frequency.DAILY, DAY1 + timedelta(days=1))
    assert statuses(db, kept)[daily] is DeliveryStatus.HELD


def test_a_correction_threads_to_the_digest_that_listed_the_original_and_follows_a_held_one(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer
) -> None:
    """CONTRACT §9's corrections meet digests: a reader who got the original in a digest gets
    the correction at once, replying to that digest's Message-ID; a reader whose digest with
    the original is still to go gets the correction in it; one who never had it, nothing."""
    got_digest = reader(db, "got@mail.example", Frequency.DAILY)
    weekly = reader(db, "weekly@mail.example", Frequency.WEEKLY)
    original = publish(db, "Original", at=DAY1)
    send(db, original, transport, redis_client, composer)
    run = run_digest(db, Frequency.DAILY, DAY1 + timedelta(days=1))
    assert run is not None
    send(db, run, transport, redis_client, composer)
    latecomer = reader(db, "late@mail.example", Frequency.IMMEDIATELY)
    transport.calls.clear()

    correction = publish(db, "Rettelse", at=DAY1 + timedelta(days=1, hours=2), corrects=original)
    planned = statuses(db, correction)
    assert planned == {got_digest: DeliveryStatus.PENDING, weekly: DeliveryStatus.HELD}
    assert latecomer not in planned
    send(db, correction, transport, redis_client, composer)
    (threaded,) = transport.calls
    headers = message_from_bytes(threaded.data, policy=policy.default)
    assert threaded.recipients == ["got@mail.example"]
    assert headers["In-Reply-To"] == headers["References"]
    assert headers["In-Reply-To"].startswith(f"<release-{run}.")  # the digest, as sent

    weekly_run = run_digest(db, Frequency.WEEKLY, DAY1 + timedelta(days=7))
    assert weekly_run is not None
    send(db, weekly_run, transport, redis_client, composer)
    digest = transport.calls[-1]
    assert digest.recipients == ["weekly@mail.example"]
    text = message_from_bytes(digest.data, policy=policy.default).get_body(("plain",))
    listed = text.get_content()  # type: ignore[union-attr]
    assert listed.index("Rettelse") < listed.index("Original")  # both, newest first
    assert statuses(db, correction)[weekly] is DeliveryStatus.SENT


def test_a_paused_release_waits_out_of_digests_until_it_is_resumed(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer
) -> None:
    daily = reader(db, "daily@mail.example", Frequency.DAILY)
    paused = publish(db, "Paused", at=DAY1)
    with db.session_scope() as session:
        releases.pause(session, paused, now=DAY1)
        assert not digests.anything_waiting(session, Frequency.DAILY, DAY1 + timedelta(days=1))
    kept = publish(db, "Kept", at=DAY1)
    run = run_digest(db, Frequency.DAILY, DAY1 + timedelta(days=1))
    assert run is not None
    with db.session_scope() as session:  # paused after the run took it: not listed either
        releases.pause(session, kept, now=DAY1)
    send(db, run, transport, redis_client, composer)
    assert transport.calls == []  # nothing left to list: that reader's digest is skipped
    assert statuses(db, kept)[daily] is DeliveryStatus.HELD  # back to waiting, not "sent"
    with db.session_scope() as session:
        releases.resume(session, paused)
        releases.resume(session, kept)
    later = run_digest(db, Frequency.DAILY, DAY1 + timedelta(days=2))
    assert later is not None
    send(db, later, transport, redis_client, composer)
    (digest,) = transport.calls
    assert "Paused" in digest.data.decode() and "Kept" in digest.data.decode()


def test_a_reader_whose_digest_is_out_has_the_release_before_the_run_ends(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer
) -> None:
    """A run stays open while one reader's digest waits for a retry (a 4xx): the others'
    listed rows take their outcome at the next sweep (digests.settle), not at the run's end."""
    quick = reader(db, "quick@mail.example", Frequency.DAILY)
    slow = reader(db, "slow@mail.example", Frequency.DAILY)
    release_id = publish(db, "Gagarin", at=DAY1)
    run = run_digest(db, Frequency.DAILY, DAY1 + timedelta(days=1))
    assert run is not None
    transport.answer("slow@mail.example", 451)
    send(db, run, transport, redis_client, composer)
    with db.session_scope() as session:
        assert session.get(Release, run).status is ReleaseStatus.SENDING  # type: ignore[union-attr]
        assert digests.unsettled_runs(session) == [run]
        digests.settle(session, run)
    assert statuses(db, release_id) == {quick: DeliveryStatus.SENT, slow: DeliveryStatus.HELD}


def test_a_cancelled_digest_run_gives_its_releases_back_to_the_next_one(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer
) -> None:
    daily = reader(db, "daily@mail.example", Frequency.DAILY)
    release_id = publish(db, "Gagarin", at=DAY1)
    run = run_digest(db, Frequency.DAILY, DAY1 + timedelta(days=1))
    assert run is not None
    with db.session_scope() as session:
        releases.cancel(session, run, now=DAY1)
        digests.settle(session, run)
    assert statuses(db, release_id)[daily] is DeliveryStatus.HELD
    later = run_digest(db, Frequency.DAILY, DAY1 + timedelta(days=2))
    assert later is not None
    send(db, later, transport, redis_client, composer)
    assert transport.addressed == ["daily@mail.example"]
    assert statuses(db, release_id)[daily] is DeliveryStatus.SENT


def test_a_reader_who_subscribes_again_gets_nothing_held_from_before(
    db: Database, composer: Composer
) -> None:
    daily = reader(db, "daily@mail.example", Frequency.DAILY)
    release_id = publish(db, "Before", at=DAY1)
    with db.session_scope() as session:
        subscriber = session.get(Subscriber, daily)
        assert subscriber is not None
        subscriptions.unsubscribe_subscriber(session, subscriber, now=DAY1)
        signup = subscriptions.Signup(
            email="daily@mail.example",
            language="nb",
            topics=[],
            source=ConsentSource.FORM,
            consent_text_version="v1",
            frequency=Frequency.DAILY,
        )
        subscriptions.subscribe(session, signup, now=DAY1 + timedelta(days=30))
        token = subscriptions.confirm_token(composer.signer, subscriber)
        subscriptions.confirm(session, composer.signer, token, now=DAY1 + timedelta(days=30))
    assert statuses(db, release_id)[daily] is DeliveryStatus.SKIPPED


def test_what_was_held_for_a_reader_who_left_is_skipped_after_the_undo_window(
    db: Database,
) -> None:
    stays = reader(db, "stays@mail.example", Frequency.DAILY)
    leaves = reader(db, "leaves@mail.example", Frequency.DAILY)
    release_id = publish(db, "Gagarin", at=DAY1)
    left_at = DAY1 + timedelta(hours=1)
    with db.session_scope() as session:
        session.execute(
            update(Subscriber)
            .where(Subscriber.id == leaves)
            .values(status="unsubscribed", updated_at=left_at)
        )
        window = timedelta(hours=24)
        assert digests.skip_for_readers_gone(session, now=left_at + window / 2, after=window) == 0
        assert digests.skip_for_readers_gone(session, now=left_at + window * 2, after=window) == 1
    assert statuses(db, release_id) == {stays: DeliveryStatus.HELD, leaves: DeliveryStatus.SKIPPED}


def test_what_a_digest_listed_is_decided_at_its_claim_whatever_happens_to_the_release_after(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer
) -> None:
    """Listed and sent, then paused: the reader has it (not listed again after a resume).
    Paused at the claim, resumed before the run settles: not listed, so still owed."""
    daily = reader(db, "daily@mail.example", Frequency.DAILY)
    listed = publish(db, "Listed", at=DAY1)
    left_out = publish(db, "Left out", at=DAY1)
    run = run_digest(db, Frequency.DAILY, DAY1 + timedelta(days=1))
    assert run is not None
    with db.session_scope() as session:
        releases.pause(session, left_out, now=DAY1)
    send(db, run, transport, redis_client, composer)
    with db.session_scope() as session:
        releases.pause(session, listed, now=DAY1)
        releases.resume(session, left_out)
        digests.settle(session, run)
    (digest,) = transport.calls
    assert "Listed" in digest.data.decode() and "Left out" not in digest.data.decode()
    assert statuses(db, listed)[daily] is DeliveryStatus.SENT
    assert statuses(db, left_out)[daily] is DeliveryStatus.HELD
    later = run_digest(db, Frequency.DAILY, DAY1 + timedelta(days=2))
    assert later is not None
    send(db, later, transport, redis_client, composer)
    second = transport.calls[1].data.decode()
    assert "Left out" in second and "Listed" not in second.replace("Left out", "")


def test_a_reader_who_leaves_before_their_digest_goes_out_gets_it_next_time_after_an_undo(
    db: Database, transport: RecordingTransport, redis_client: redis.Redis, composer: Composer
) -> None:
    daily = reader(db, "daily@mail.example", Frequency.DAILY)
    release_id = publish(db, "Gagarin", at=DAY1)
    run = run_digest(db, Frequency.DAILY, DAY1 + timedelta(days=1))
    assert run is not None
    with db.session_scope() as session:
        session.execute(
            update(Subscriber).where(Subscriber.id == daily).values(status="unsubscribed")
        )
    send(db, run, transport, redis_client, composer)
    assert transport.calls == []
    assert statuses(db, release_id)[daily] is DeliveryStatus.HELD  # not skipped: back waiting
    with db.session_scope() as session:  # an undo within the day
        session.execute(update(Subscriber).where(Subscriber.id == daily).values(status="confirmed"))
    later = run_digest(db, Frequency.DAILY, DAY1 + timedelta(days=2))
    assert later is not None
    send(db, later, transport, redis_client, composer)
    assert transport.addressed == ["daily@mail.example"]
