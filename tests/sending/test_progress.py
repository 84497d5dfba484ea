"""What the desk says before and during a send: who a release would reach, and how far it is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.orm import Session

from service.domain import releases
from service.models import (
    ConsentSource,
    Delivery,
    DeliveryStatus,
    Release,
    Subscriber,
    SubscriberStatus,
    SubscriberTopic,
)
from service.sending import progress

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def reader(session: Session, email: str, *, language: str = "nb", topics: tuple[str, ...] = (),
           status: SubscriberStatus = SubscriberStatus.CONFIRMED) -> int:  # fmt: skip
    subscriber = Subscriber(
        email=email,
        language=language,
        status=status,
        consent_source=ConsentSource.IMPORT,
        consent_text_version="test",
    )
    session.add(subscriber)
    session.flush()
    for topic in topics:
        session.add(SubscriberTopic(subscriber_id=subscriber.id, topic=topic))
    session.flush()
    return subscriber.id


def release(session: Session, **fields: object) -> Release:
    draft = releases.parse_release(
        {"title": "Gagarin", "language": "nb", **fields}, now=NOW - timedelta(hours=1)
    )
    return releases.create_release(session, draft, publisher_id=None, now=NOW)


def test_the_audience_is_confirmed_readers_whose_topics_match_by_language_they_get(
    session: Session,
) -> None:
    reader(session, "nb@mail.example")
    reader(session, "en@mail.example", language="en")
    reader(session, "culture@mail.example", topics=("kultur",))
    reader(session, "sport@mail.example", topics=("sport",))
    reader(session, "waiting@mail.example", status=SubscriberStatus.PENDING)
    reader(session, "gone@mail.example", status=SubscriberStatus.UNSUBSCRIBED)
    only_norwegian = release(session, topics=["kultur"])
    assert progress.audience(session, only_norwegian) == {"nb": 3}  # en reads the nb version
    both = release(
        session, topics=["kultur"], translations={"en": {"title": "Gagarin", "body": ""}}
    )
    assert progress.audience(session, both) == {"nb": 2, "en": 1}
    strict = release(session, fallback_to_primary=False)
    assert progress.audience(session, strict) == {"nb": 3}  # no English version: en is left out


def test_progress_counts_the_rows_and_what_waits_for_a_retry(session: Session) -> None:
    ids = [reader(session, f"r{n}@mail.example") for n in range(6)]
    sending = release(session)
    releases.publish(session, sending.id, now=NOW)
    sending.planned_at = NOW
    statuses = [
        (DeliveryStatus.SENT, None),
        (DeliveryStatus.SENT, None),
        (DeliveryStatus.FAILED, None),
        (DeliveryStatus.PENDING, NOW + timedelta(minutes=5)),  # deferred after a 4xx
        (DeliveryStatus.PENDING, None),
        (DeliveryStatus.SKIPPED, None),
    ]
    session.execute(
        insert(Delivery),
        [
            {"release_id": sending.id, "subscriber_id": subscriber_id, "language": "nb",
             "status": status, "attempts": 1, "next_attempt_at": retry}
            for subscriber_id, (status, retry) in zip(ids, statuses, strict=True)
        ],
    )  # fmt: skip
    now = NOW + timedelta(seconds=10)
    state = progress.send_progress(session, sending, now=now)
    assert (state.state, state.total, state.sent, state.failed) == ("sending", 6, 2, 1)
    assert (state.pending, state.deferred, state.skipped) == (2, 1, 1)
    assert state.percent == 66.7  # sent, failed and skipped are done
    assert state.rate == 0.2  # 2 sent in the 10 s since the send began
    assert state.eta_seconds == 10  # 2 owed at 0.2 a second
    assert not state.planning

    releases.pause(session, sending.id, reason="530 authentication required", now=now)
    paused = progress.send_progress(session, sending, now=now)
    assert (paused.state, paused.eta_seconds) == ("paused", None)
    assert paused.pause_reason == "530 authentication required"
