"""`flask subscribers unbounce --since WHEN`: undoing the blame a relay's refusal put on readers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import func, select

from service.app_state import session_scope
from service.domain import bounce_policy
from service.domain.bounce_policy import Report
from service.models import (
    ReportDoor,
    Subscriber,
    SubscriberStatus,
    SubscriptionEvent,
    SubscriptionEventKind,
    Suppression,
)
from tests.cli.helpers import flask
from tests.pipeline.helpers import add_subscribers

EARLIER = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
OUTAGE = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def bounce(app: Flask, ids: list[int], at: datetime, *, status: str = "5.1.1") -> None:
    """A report naming each reader (a provider's, signed), taken by the bounce policy."""
    with app.app_context(), session_scope() as session:
        for subscriber_id in ids:
            email = session.get(Subscriber, subscriber_id).email  # type: ignore[union-attr]
            report = Report(
                ReportDoor.GENERIC, "failed", status, address=email, address_vouched=True,
                report_id=f"{subscriber_id}@{at.isoformat()}",
            )  # fmt: skip
            bounce_policy.take(session, report, now=at)


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


def test_points_that_bounces_since_then_gave_readers_still_confirmed_are_taken_back(
    app: Flask,
) -> None:
    scored, older = add_subscribers(app, ["scored@mail.example", "older@mail.example"])
    day = timedelta(days=1)
    bounce(app, [scored], OUTAGE - day, status="4.2.2")
    bounce(app, [scored], OUTAGE + timedelta(hours=1), status="4.2.2")
    bounce(app, [older], OUTAGE - 2 * day, status="4.2.2")
    bounce(app, [older], OUTAGE - day, status="4.2.2")
    result = flask(app, "subscribers", "unbounce", "--since", OUTAGE.isoformat())
    assert result.exit_code == 0, result.output
    with app.app_context(), session_scope() as session:
        scores = dict(session.execute(select(Subscriber.email, Subscriber.bounce_score)).all())
    # The point scored since then goes; those from before stay.
    assert scores == {"scored@mail.example": 1, "older@mail.example": 2}
