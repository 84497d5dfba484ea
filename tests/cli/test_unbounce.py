"""`flask subscribers unbounce --since WHEN`: undoing the blame a relay's refusal put on readers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import func, select

from service.app_state import session_scope
from service.models import (
    Subscriber,
    SubscriberStatus,
    SubscriptionEvent,
    SubscriptionEventKind,
    Suppression,
)
from service.sending import ledger
from tests.cli.helpers import flask
from tests.pipeline.helpers import add_subscribers

EARLIER = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
OUTAGE = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def bounce(app: Flask, ids: list[int], at: datetime, *, unknown_user: bool = True) -> None:
    with app.app_context(), session_scope() as session:
        for subscriber_id in ids:
            ledger.record_hard_bounce(session, subscriber_id, unknown_user=unknown_user, now=at)


def statuses(app: Flask) -> dict[str, SubscriberStatus]:
    with app.app_context(), session_scope() as session:
        return dict(session.execute(select(Subscriber.email, Subscriber.status)).all())


def test_readers_bounced_since_then_are_readers_again(app: Flask) -> None:
    wrongly = [f"wrong{i}@mail.example" for i in range(3)]
    rightly = ["dead@mail.example"]
    ids = add_subscribers(app, [*wrongly, *rightly])
    bounce(app, ids[3:], EARLIER)
    bounce(app, ids[:3], OUTAGE + timedelta(minutes=5))

    dry = flask(app, "subscribers", "unbounce", "--since", OUTAGE.isoformat(), "--dry-run")
    assert dry.exit_code == 0 and "3 readers" in dry.output
    assert all(statuses(app)[a] is SubscriberStatus.BOUNCED for a in wrongly)

    result = flask(app, "subscribers", "unbounce", "--since", "2026-11-29T10:00:00+01:00")
    assert result.exit_code == 0, result.output
    assert "Restored 3 readers" in result.output
    now = statuses(app)
    assert all(now[a] is SubscriberStatus.CONFIRMED for a in wrongly)
    assert now["dead@mail.example"] is SubscriberStatus.BOUNCED
    with app.app_context(), session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 1
        scores = set(
            session.scalars(select(Subscriber.bounce_score).where(Subscriber.email.in_(wrongly)))
        )
        assert scores == {0}
        joins = session.scalar(
            select(func.count())
            .select_from(SubscriptionEvent)
            .where(SubscriptionEvent.kind == SubscriptionEventKind.CONFIRMED)
        )
        assert joins == 3
    again = flask(app, "subscribers", "unbounce", "--since", OUTAGE.isoformat())
    assert "Restored 0 readers" in again.output


def test_a_time_without_zone_is_refused_and_changes_nothing(app: Flask) -> None:
    ids = add_subscribers(app, ["wrong@mail.example"])
    bounce(app, ids, OUTAGE)
    result = flask(app, "subscribers", "unbounce", "--since", "2026-11-29T09:00:00")
    assert result.exit_code == 1
    assert "time zone" in result.output
    assert statuses(app)["wrong@mail.example"] is SubscriberStatus.BOUNCED


def test_scores_that_releases_since_then_gave_readers_still_confirmed_are_taken_back(
    app: Flask,
) -> None:
    from service.models import Delivery, DeliveryStatus, Release, ReleaseStatus

    ids = add_subscribers(app, ["scored@mail.example", "older@mail.example"])
    with app.app_context(), session_scope() as session:
        for n, started in enumerate((OUTAGE + timedelta(hours=1), EARLIER)):
            release = Release(
                slug=f"r{n}", title="T", language="nb", status=ReleaseStatus.SENT,
                send_started_at=started, created_at=started,
            )  # fmt: skip
            session.add(release)
            session.flush()
            for subscriber_id in ids:
                session.add(
                    Delivery(
                        release_id=release.id, subscriber_id=subscriber_id, language="nb",
                        status=DeliveryStatus.FAILED,
                    )
                )  # fmt: skip
        for row in session.scalars(select(Subscriber)):
            row.bounce_score = 2
    result = flask(app, "subscribers", "unbounce", "--since", OUTAGE.isoformat())
    assert result.exit_code == 0, result.output
    with app.app_context(), session_scope() as session:
        scores = dict(session.execute(select(Subscriber.email, Subscriber.bounce_score)).all())
    # One failed delivery since then each: that score goes; the one from before stays.
    assert scores == {"scored@mail.example": 1, "older@mail.example": 1}
