"""`flask subscribers unbounce --since WHEN`: undoing the blame a relay's refusal put on readers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import func, select

from service.db import session_scope
from service.domain import delivery
from service.models import (
    Subscriber,
    SubscriberStatus,
    SubscriptionEvent,
    SubscriptionEventKind,
    Suppression,
)
from tests.cli.test_publisher_commands import flask
from tests.pipeline.helpers import add_subscribers

EARLIER = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
OUTAGE = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def bounce(app: Flask, ids: list[int], at: datetime, *, unknown_user: bool = True) -> None:
    with app.app_context(), session_scope() as session:
        for subscriber_id in ids:
            delivery.record_hard_bounce(session, subscriber_id, unknown_user=unknown_user, now=at)


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
    result = flask(app, "subscribers", "unbounce", "--since", "2026-11-29 09:00")
    assert result.exit_code == 1
    assert "time zone" in result.output
    assert statuses(app)["wrong@mail.example"] is SubscriberStatus.BOUNCED
