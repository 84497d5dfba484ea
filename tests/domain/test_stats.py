"""The desk's charts count what really happened: joins and departures per local day, the list's
size, and per release what was delivered, what failed and who left through its link."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from service.domain import bounce_policy, imports, releases, stats, subscriptions
from service.domain.bounce_policy import Report
from service.domain.errors import InvalidInput
from service.domain.mail_site import MailSite
from service.domain.release_messages import ReleaseMessage
from service.domain.tokens import Purpose, TokenSigner
from service.models import (
    ConsentSource,
    Delivery,
    DeliveryStatus,
    Release,
    ReportDoor,
    Subscriber,
    SubscriberStatus,
    SubscriptionEvent,
    SubscriptionEventKind,
)
from service.sending import ledger

OSLO = ZoneInfo("Europe/Oslo")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # Oslo is UTC+1 in November
TODAY = date(2026, 11, 25)


@pytest.fixture
def signer(app: Flask) -> TokenSigner:
    return app.extensions["pressroom.signer"]


def join(session: Session, signer: TokenSigner, email: str, at: datetime) -> Subscriber:
    """Sign up and confirm through the lifecycle functions, at a given moment."""
    signup = subscriptions.Signup(
        email=email,
        language="nb",
        topics=[],
        source=ConsentSource.FORM,
        consent_text_version="v1",
    )
    subscriptions.subscribe(session, signup, now=at)
    row = subscriptions.find_by_email(session, email)
    assert row is not None
    token = subscriptions.confirm_token(signer, row)
    return subscriptions.confirm(session, signer, token, now=at).subscriber


def leave(session: Session, signer: TokenSigner, row: Subscriber, at: datetime) -> None:
    subscriptions.unsubscribe(session, signer, subscriptions.unsubscribe_token(signer, row), now=at)


def events(session: Session, kind: SubscriptionEventKind | None = None) -> int:
    query = select(func.count()).select_from(SubscriptionEvent)
    if kind is not None:
        query = query.where(SubscriptionEvent.kind == kind)
    return session.scalar(query) or 0


def by_day(history: stats.SubscriberHistory) -> dict[date, stats.Day]:
    return {d.day: d for d in history.days}


def test_joins_and_departures_per_day_with_net_and_the_list_size(
    session: Session, signer: TokenSigner
) -> None:
    yesterday = NOW - timedelta(days=1)
    anne = join(session, signer, "anne@mail.example", yesterday)
    bo = join(session, signer, "bo@mail.example", yesterday)
    join(session, signer, "cem@mail.example", NOW)
    dag = join(session, signer, "dag@mail.example", NOW)
    leave(session, signer, anne, NOW)
    subscriptions.erase(session, bo, now=NOW)
    bounce(session, dag, "5.1.1", NOW)

    history = stats.subscriber_history(session, days=30, now=NOW, zone=OSLO)

    assert len(history.days) == 30
    assert history.days[-1].day == TODAY
    assert history.days[0].day == TODAY - timedelta(days=29)
    days = by_day(history)
    before, today = days[TODAY - timedelta(days=1)], days[TODAY]
    assert (before.confirmed, before.left, before.net, before.total) == (2, 0, 2, 2)
    assert (today.confirmed, today.unsubscribed, today.erased, today.bounced) == (2, 1, 1, 1)
    assert (today.left, today.net, today.total) == (3, -1, 1)
    assert history.current == 1  # cem: the only confirmed reader left
    assert (history.confirmed, history.left, history.net) == (4, 3, 1)
    assert history.start_total == 0
    assert all(d.total == 0 for d in history.days[:-2])


def test_the_list_size_is_counted_back_from_the_real_number_of_readers(
    session: Session, signer: TokenSigner
) -> None:
    # Readers from before the log existed (or a migration without history) carry no event.
    for n in range(5):
        session.add(
            Subscriber(
                email=f"old{n}@mail.example",
                status=SubscriberStatus.CONFIRMED,
                consent_source=ConsentSource.IMPORT,
                consent_text_version="v0",
                confirmed_at=NOW - timedelta(days=400),
            )
        )
    session.flush()
    old = subscriptions.find_by_email(session, "old0@mail.example")
    assert old is not None
    leave(session, signer, old, NOW - timedelta(days=2))
    join(session, signer, "new@mail.example", NOW)

    history = stats.subscriber_history(session, days=30, now=NOW, zone=OSLO)

    days = by_day(history)
    assert history.current == 5
    assert days[TODAY].total == 5
    assert days[TODAY - timedelta(days=1)].total == 4
    assert days[TODAY - timedelta(days=2)].total == 4
    assert days[TODAY - timedelta(days=3)].total == 5
    assert history.start_total == 5


@pytest.mark.parametrize(
    ("moment", "local_day"),
    [
        # Winter, UTC+1: 23:30 UTC is already the next day in Oslo.
        (datetime(2026, 11, 23, 23, 30, tzinfo=UTC), date(2026, 11, 24)),
        (datetime(2026, 11, 23, 22, 59, tzinfo=UTC), date(2026, 11, 23)),
        # Summer, UTC+2: 22:30 UTC is the next day; 21:59 UTC is not.
        (datetime(2026, 7, 1, 22, 30, tzinfo=UTC), date(2026, 7, 2)),
        (datetime(2026, 7, 1, 21, 59, tzinfo=UTC), date(2026, 7, 1)),
        # Either side of the change back to winter time (2026-10-25 01:00 UTC).
        (datetime(2026, 10, 24, 22, 30, tzinfo=UTC), date(2026, 10, 25)),
        (datetime(2026, 10, 25, 22, 30, tzinfo=UTC), date(2026, 10, 25)),
        (datetime(2026, 10, 25, 23, 30, tzinfo=UTC), date(2026, 10, 26)),
    ],
)
def test_days_are_the_desk_time_zone_days(
    session: Session, signer: TokenSigner, moment: datetime, local_day: date
) -> None:
    join(session, signer, "late@mail.example", moment)
    history = stats.subscriber_history(session, days=365, now=NOW, zone=OSLO)
    assert [d.day for d in history.days if d.confirmed] == [local_day]


def test_events_outside_the_window_are_not_counted(session: Session, signer: TokenSigner) -> None:
    first_day = datetime(2026, 10, 27, tzinfo=OSLO)  # 30 days ending on 25 November
    join(session, signer, "early@mail.example", first_day - timedelta(minutes=1))
    join(session, signer, "first@mail.example", first_day)
    history = stats.subscriber_history(session, days=30, now=NOW, zone=OSLO)
    assert history.confirmed == 1
    assert history.days[0].confirmed == 1
    assert history.start_total == 1


def test_a_departure_is_logged_once_and_only_for_a_confirmed_reader(
    session: Session, signer: TokenSigner
) -> None:
    row = join(session, signer, "twice@mail.example", NOW)
    token = subscriptions.unsubscribe_token(signer, row)
    for _ in range(3):
        subscriptions.unsubscribe(session, signer, token, now=NOW)
    assert events(session, SubscriptionEventKind.UNSUBSCRIBED) == 1

    subscriptions.erase(session, row, now=NOW)  # already gone from the list: not again
    assert events(session, SubscriptionEventKind.ERASED) == 0

    pending = subscriptions.subscribe(
        session,
        subscriptions.Signup(
            email="pending@mail.example",
            language="nb",
            topics=[],
            source=ConsentSource.FORM,
            consent_text_version="v1",
        ),
        now=NOW,
    )
    never = subscriptions.find_by_email(session, "pending@mail.example")
    assert never is not None and pending.subscriber_uid == never.uid
    leave(session, signer, never, NOW)
    assert never.status is SubscriberStatus.UNSUBSCRIBED  # still stops mail
    assert events(session) == 2  # one join, one departure: a pending reader never joined


def test_a_second_use_of_a_confirm_link_is_not_a_second_join(
    session: Session, signer: TokenSigner
) -> None:
    join(session, signer, "once@mail.example", NOW)
    row = subscriptions.find_by_email(session, "once@mail.example")
    assert row is not None
    stale = signer.dumps(Purpose.CONFIRM, {"u": row.uid, "v": row.token_version - 1})
    assert subscriptions.confirm(session, signer, stale, now=NOW).already_confirmed
    # Even a link of the current version does not confirm a confirmed reader twice.
    current = subscriptions.confirm_token(signer, row)
    assert subscriptions.confirm(session, signer, current, now=NOW).already_confirmed
    assert events(session, SubscriptionEventKind.CONFIRMED) == 1


def test_a_reader_who_comes_back_counts_as_joining_again(
    session: Session, signer: TokenSigner
) -> None:
    row = join(session, signer, "back@mail.example", NOW - timedelta(days=3))
    leave(session, signer, row, NOW - timedelta(days=2))
    join(session, signer, "back@mail.example", NOW)
    history = stats.subscriber_history(session, days=30, now=NOW, zone=OSLO)
    assert history.confirmed == 2 and history.left == 1 and history.current == 1
    assert by_day(history)[TODAY - timedelta(days=2)].total == 0


def bounce(session: Session, reader: Subscriber, status: str, at: datetime) -> None:
    report = Report(
        ReportDoor.GENERIC, "failed", status, address=reader.email, address_vouched=True,
        report_id=f"{reader.id}@{at.isoformat()}",
    )  # fmt: skip
    bounce_policy.take(session, report, now=at)


def test_repeated_soft_bounces_log_one_departure(session: Session, signer: TokenSigner) -> None:
    row = join(session, signer, "full@mail.example", NOW)
    for n in range(bounce_policy.SCORE_THRESHOLD + 2):
        bounce(session, row, "4.2.2", NOW + timedelta(days=n))
    session.refresh(row)
    assert row.status is SubscriberStatus.BOUNCED
    assert events(session, SubscriptionEventKind.BOUNCED) == 1


def test_a_confirmed_import_logs_one_join_per_new_reader(
    session: Session, signer: TokenSigner
) -> None:
    join(session, signer, "here@mail.example", NOW - timedelta(days=1))
    rows = [
        imports.ImportRow(line, email, None, "nb", ())
        for line, email in enumerate(
            ["here@mail.example", "new1@mail.example", "new2@mail.example", "new3@mail.example"],
            start=2,
        )
    ]
    confirmed = imports.ImportOptions(consent_text_version="import", confirmed=True)
    assert imports.import_rows(session, rows, confirmed, now=NOW).imported == 3
    pending_rows = [imports.ImportRow(9, "pending@mail.example", None, "nb", ())]
    pending = imports.ImportOptions(consent_text_version="import")
    assert imports.import_rows(session, pending_rows, pending, now=NOW).imported == 1

    history = stats.subscriber_history(session, days=30, now=NOW, zone=OSLO)
    assert by_day(history)[TODAY].confirmed == 3
    assert history.current == 4


def sent_release(session: Session, title: str, at: datetime) -> Release:
    draft = releases.parse_release(
        {"title": title, "summary": "S", "body": "Tekst", "language": "nb"}, now=at
    )
    release = releases.create_release(session, draft, publisher_id=None, now=at)
    releases.publish(session, release.id, now=at)
    while release.planned_at is None:
        ledger.plan_chunk(session, release, now=at)
    return release


def finish(session: Session, release: Release, *, sent: int, failed: int) -> None:
    ids = list(
        session.scalars(
            select(Delivery.id).where(Delivery.release_id == release.id).order_by(Delivery.id)
        )
    )
    for status, chosen in (
        (DeliveryStatus.SENT, ids[:sent]),
        (DeliveryStatus.FAILED, ids[sent : sent + failed]),
    ):
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(chosen))
            .values(status=status)
            .execution_options(synchronize_session=False)
        )


def message_for(app: Flask, signer: TokenSigner, release: Release) -> ReleaseMessage:
    site = MailSite(
        base_url="http://press.example",
        mail_from="Pressroom <noreply@press.example>",
        site_name="Pressroom",
        list_id="press.example",
    )
    return ReleaseMessage(app.extensions["pressroom.emails"], signer, site, release, "nb", now=NOW)


def one_click_token(raw: bytes) -> str:
    """The token of a release email's List-Unsubscribe header, as a mail client reads it."""
    message: Message = message_from_bytes(raw)
    header = str(message["List-Unsubscribe"]).strip("<>")
    assert header.startswith("http://press.example/unsubscribe/")
    return header.rsplit("/", 1)[1]


def test_per_release_delivered_failed_and_the_unsubscribes_it_caused(
    app: Flask, session: Session, signer: TokenSigner
) -> None:
    readers = [join(session, signer, f"r{n}@mail.example", NOW) for n in range(5)]
    first = sent_release(session, "Første", NOW - timedelta(days=2))
    finish(session, first, sent=4, failed=1)
    second = sent_release(session, "Andre", NOW - timedelta(days=1))
    finish(session, second, sent=5, failed=0)
    draft = releases.create_release(
        session,
        releases.parse_release({"title": "Kladd", "body": "x", "language": "nb"}, now=NOW),
        publisher_id=None,
        now=NOW,
    )

    # Two readers leave through the first release's email (one of them clicks three times),
    # one through the second's, one through a link without a release (the preferences page).
    first_mail = message_for(app, signer, first)
    token = one_click_token(first_mail.for_recipient(readers[0].email, readers[0].uid))
    for _ in range(3):
        subscriptions.unsubscribe(session, signer, token, now=NOW)
    token = one_click_token(first_mail.for_recipient(readers[1].email, readers[1].uid))
    subscriptions.unsubscribe(session, signer, token, now=NOW)
    second_mail = message_for(app, signer, second)
    token = one_click_token(second_mail.for_recipient(readers[2].email, readers[2].uid))
    subscriptions.unsubscribe(session, signer, token, now=NOW)
    leave(session, signer, readers[3], NOW)

    outcomes = stats.release_outcomes(session)

    assert [o.release_id for o in outcomes] == [first.id, second.id]  # oldest first
    assert draft.id not in [o.release_id for o in outcomes]
    one, two = outcomes
    assert (one.recipients, one.delivered, one.failed, one.unsubscribed) == (5, 4, 1, 2)
    assert (two.recipients, two.delivered, two.failed, two.unsubscribed) == (5, 5, 0, 1)
    assert one.unsubscribe_rate == pytest.approx(0.5)
    assert events(session, SubscriptionEventKind.UNSUBSCRIBED) == 4


def test_per_release_hard_bounces_and_complaints_at_once_or_reported_later(
    session: Session, signer: TokenSigner
) -> None:
    readers = [join(session, signer, f"r{n}@mail.example", NOW) for n in range(6)]
    first = sent_release(session, "Første", NOW - timedelta(days=2))
    finish(session, first, sent=5, failed=1)
    second = sent_release(session, "Andre", NOW - timedelta(days=1))
    finish(session, second, sent=4, failed=0)

    def delivery_of(release: Release, reader: Subscriber) -> int:
        return session.scalars(
            select(Delivery.id).where(
                Delivery.release_id == release.id, Delivery.subscriber_id == reader.id
            )
        ).one()

    def report(release: Release, reader: Subscriber, action: str, status: str | None) -> None:
        door = ReportDoor.RELAY if action == "failed" else ReportDoor.GENERIC
        bounce_policy.take(
            session, Report(door, action, status, delivery_id=delivery_of(release, reader)), now=NOW
        )

    failed_reader = session.get(Subscriber, session.scalars(
        select(Delivery.subscriber_id).where(
            Delivery.release_id == first.id, Delivery.status == DeliveryStatus.FAILED
        )
    ).one())  # fmt: skip
    assert failed_reader is not None
    others = [r for r in readers if r.id != failed_reader.id]
    report(first, failed_reader, "failed", "5.1.1")  # refused during the send
    report(first, others[0], "failed", "5.1.1")  # taken, bounced later
    report(first, others[1], "failed", "4.2.2")  # a soft bounce: not counted here
    report(first, others[2], "complaint", None)
    report(first, others[2], "complaint", None)  # the same complaint twice counts once
    report(second, others[3], "complaint", None)

    one, two = stats.release_outcomes(session)
    assert (one.bounced, one.complained) == (2, 1)
    assert (two.bounced, two.complained) == (0, 1)


def test_only_the_last_releases_are_shown(session: Session, signer: TokenSigner) -> None:
    made = [sent_release(session, f"R{n}", NOW - timedelta(hours=10 - n)) for n in range(4)]
    assert [o.release_id for o in stats.release_outcomes(session, limit=2)] == [
        made[2].id,
        made[3].id,
    ]


def test_an_unsubscribe_link_from_before_release_ids_still_works(
    session: Session, signer: TokenSigner
) -> None:
    row = join(session, signer, "old-mail@mail.example", NOW)
    old_token = signer.dumps(Purpose.UNSUBSCRIBE, {"u": row.uid})
    subscriptions.unsubscribe(session, signer, old_token, now=NOW)
    assert row.status is SubscriberStatus.UNSUBSCRIBED
    logged = session.scalars(select(SubscriptionEvent)).all()
    assert [(e.kind, e.release_id) for e in logged] == [
        (SubscriptionEventKind.CONFIRMED, None),
        (SubscriptionEventKind.UNSUBSCRIBED, None),
    ]


def test_a_link_naming_a_release_that_is_gone_still_unsubscribes(
    session: Session, signer: TokenSigner
) -> None:
    row = join(session, signer, "gone@mail.example", NOW)
    token = signer.dumps(Purpose.UNSUBSCRIBE, {"u": row.uid, "r": 987654})
    subscriptions.unsubscribe(session, signer, token, now=NOW)
    assert row.status is SubscriberStatus.UNSUBSCRIBED
    assert (
        session.scalar(
            select(SubscriptionEvent.release_id).where(
                SubscriptionEvent.kind == SubscriptionEventKind.UNSUBSCRIBED
            )
        )
        is None
    )


@pytest.mark.parametrize(("raw", "days"), [(None, 30), ("", 30), ("90", 90), (" 365 ", 365)])
def test_the_window_is_one_of_the_offered_periods(raw: object, days: int) -> None:
    assert stats.parse_window(raw) == days


@pytest.mark.parametrize("raw", ["7", "-30", "30.0", "abc", "3650", "1e2"])
def test_other_windows_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput):
        stats.parse_window(raw)


def test_the_zone_offsets_change_at_the_summer_time_transitions() -> None:
    start = datetime(2025, 11, 25, 23, 0, tzinfo=UTC)
    end = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)
    assert stats._offsets(OSLO, start, end) == [
        (start, 60),
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), 120),
        (datetime(2026, 10, 25, 1, 0, tzinfo=UTC), 60),
    ]
    assert stats._offsets(ZoneInfo("UTC"), start, end) == [(start, 0)]
