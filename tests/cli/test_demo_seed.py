"""`flask demo seed` (what `make run` does after migrating): a working demo login, releases and
demo readers with a history for the charts, seeded once."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from service import create_app
from service.app_state import get_database, session_scope
from service.db import utcnow
from service.domain import publishers, stats
from service.mailsink import MailSink
from service.models import (
    ConsentSource,
    Release,
    ReleaseStatus,
    Subscriber,
    SubscriberStatus,
    SubscriberTopic,
    SubscriptionEvent,
    SubscriptionEventKind,
)
from tests.cli.helpers import can_log_in, flask, token_works
from tests.conftest import make_settings
from tests.pipeline.helpers import add_subscribers


def release_count(app: Flask) -> int:
    with app.app_context(), session_scope() as session:
        return session.scalar(select(func.count()).select_from(Release)) or 0


def reader_count(app: Flask) -> int:
    with app.app_context(), session_scope() as session:
        return session.scalar(select(func.count()).select_from(Subscriber)) or 0


def event_count(app: Flask) -> int:
    with app.app_context(), session_scope() as session:
        return session.scalar(select(func.count()).select_from(SubscriptionEvent)) or 0


def seed(app: Flask, tmp_path: Path) -> str:
    result = flask(app, "demo", "seed", "--login-file", str(tmp_path / "demo-login.json"))
    assert result.exit_code == 0, result.output
    return result.output


def test_seed_gives_a_working_login_and_public_releases_once(app: Flask, tmp_path: Path) -> None:
    login_file = tmp_path / "demo-login.json"
    first = flask(app, "demo", "seed", "--login-file", str(login_file))
    assert first.exit_code == 0, first.output
    login = json.loads(login_file.read_text())
    assert login_file.stat().st_mode & 0o077 == 0  # only the owner reads it
    assert can_log_in(app, login["email"], login["password"])
    assert token_works(app, login["token"])
    assert release_count(app) == 2
    with app.app_context(), session_scope() as session:
        statuses = set(session.scalars(select(Release.status)))
    assert statuses == {ReleaseStatus.PUBLISHED}  # on the site, never emailed
    assert "Seeded 40 demo readers." in first.output
    assert (reader_count(app), event_count(app)) == (40, 36 + 4)

    again = flask(app, "demo", "seed", "--login-file", str(login_file))
    assert again.exit_code == 0, again.output
    assert json.loads(login_file.read_text()) == login
    assert release_count(app) == 2
    assert "Seeded" not in again.output
    assert (reader_count(app), event_count(app)) == (40, 36 + 4)  # nothing added twice


def test_seed_repairs_a_login_whose_file_or_database_was_reset(app: Flask, tmp_path: Path) -> None:
    login_file = tmp_path / "demo-login.json"
    flask(app, "demo", "seed", "--login-file", str(login_file))
    login_file.unlink()  # a new password, for the publisher that exists
    assert flask(app, "demo", "seed", "--login-file", str(login_file)).exit_code == 0
    login = json.loads(login_file.read_text())
    assert can_log_in(app, login["email"], login["password"])
    with app.app_context(), session_scope() as session:
        publisher = publishers.find_publisher(session, login["email"])
        assert publisher is not None
        publishers.revoke_tokens(session, publisher, now=utcnow())
    assert flask(app, "demo", "seed", "--login-file", str(login_file)).exit_code == 0
    assert token_works(app, json.loads(login_file.read_text())["token"])


def test_seed_refuses_a_database_with_publishers_of_its_own(app: Flask, tmp_path: Path) -> None:
    with app.app_context(), session_scope() as session:
        publishers.create_publisher(session, "editor@press.example", "long enough pw", now=utcnow())
    result = flask(app, "demo", "seed", "--login-file", str(tmp_path / "demo-login.json"))
    assert result.exit_code == 1
    assert "demo database" in result.stderr
    assert not (tmp_path / "demo-login.json").exists()
    assert release_count(app) == 0
    assert (reader_count(app), event_count(app)) == (0, 0)
    with app.app_context(), session_scope() as session:
        assert publishers.find_publisher(session, "desk@pressroom.example") is None


def test_seed_adds_demo_readers_with_a_backdated_history(app: Flask, tmp_path: Path) -> None:
    before = utcnow()
    seed(app, tmp_path)
    after = utcnow()
    with app.app_context(), session_scope() as session:
        readers = session.scalars(select(Subscriber).order_by(Subscriber.email)).all()
        events = session.execute(
            select(
                SubscriptionEvent.kind, SubscriptionEvent.occurred_at, SubscriptionEvent.release_id
            )
        ).all()
        topic_rows = session.scalar(select(func.count()).select_from(SubscriberTopic))

    # Two at the domains the local sink bounces and complains for (service/dev_reports.py).
    domains = {3: "bounce.example", 8: "complaint.example"}
    assert sorted(r.email for r in readers) == sorted(
        f"reader{n:02d}@{domains.get(n, 'demo.pressroom.example')}" for n in range(1, 41)
    )
    assert Counter(r.status for r in readers) == {
        SubscriberStatus.CONFIRMED: 32,
        SubscriberStatus.PENDING: 4,
        SubscriberStatus.UNSUBSCRIBED: 4,
    }
    assert Counter(r.language for r in readers) == {"nb": 30, "en": 10}
    assert Counter((r.status, r.language) for r in readers)[SubscriberStatus.CONFIRMED, "en"] == 7
    assert topic_rows == 0  # no TOPICS configured: nobody chose one
    assert {(r.consent_source, r.consent_note) for r in readers} == {
        (
            ConsentSource.IMPORT,
            "Demo data for make run: addresses on a reserved domain, mail to the sink.",
        )
    }

    # Spread over the last two months, each step after the one before it.
    for r in readers:
        assert before - timedelta(days=61) < r.created_at < after
        assert r.consent_at == r.created_at
        if r.status is SubscriberStatus.PENDING:
            assert r.confirmed_at is None and r.unsubscribed_at is None
            assert r.created_at > before - timedelta(days=4)  # signed up lately
        else:
            assert r.confirmed_at is not None and r.created_at < r.confirmed_at < after
        if r.status is SubscriberStatus.UNSUBSCRIBED:
            assert r.confirmed_at is not None and r.unsubscribed_at is not None
            assert r.confirmed_at < r.unsubscribed_at < after
        else:
            assert r.unsubscribed_at is None
    assert min(r.created_at for r in readers) < before - timedelta(days=45)

    # The log: a join at each confirmation (the leavers joined too), a departure at each
    # unsubscribe, and none for the pending readers; no release named (none was emailed).
    joins = sorted(at for kind, at, _ in events if kind is SubscriptionEventKind.CONFIRMED)
    leaves = sorted(at for kind, at, _ in events if kind is SubscriptionEventKind.UNSUBSCRIBED)
    assert len(events) == len(joins) + len(leaves)
    assert joins == sorted(r.confirmed_at for r in readers if r.confirmed_at is not None)
    assert len(joins) == 36
    assert leaves == sorted(r.unsubscribed_at for r in readers if r.unsubscribed_at is not None)
    assert len(leaves) == 4
    assert {release_id for _, _, release_id in events} == {None}


def test_the_charts_have_a_curve_to_draw_after_seeding(app: Flask, tmp_path: Path) -> None:
    seed(app, tmp_path)
    zone = app.extensions["pressroom.settings"].zone
    with app.app_context(), session_scope() as session:
        month = stats.subscriber_history(session, days=30, now=utcnow(), zone=zone)
        quarter = stats.subscriber_history(session, days=90, now=utcnow(), zone=zone)
        outcomes = stats.release_outcomes(session)

    assert month.current == quarter.current == 32
    assert len(month.days) == 30 and month.days[-1].total == 32
    assert month.confirmed > 0 and month.start_total > 0  # joins within the month, and before it
    assert len({d.total for d in month.days}) > 1  # a curve, not a flat line
    # Over 90 days the whole history shows: it starts from an empty list.
    assert quarter.start_total == 0
    assert (quarter.confirmed, quarter.left) == (36, 4)
    assert outcomes == []  # the archive releases were never emailed


@pytest.fixture
def topical_app(app: Flask, database_url: str, redis_url: str, sink: MailSink) -> Iterator[Flask]:
    topical = create_app(
        make_settings(
            database_url,
            redis_url,
            sink.url,
            topics=("culture", "space-travel", "trade"),
            task_queue=app.extensions["pressroom.settings"].task_queue,
        )
    )
    yield topical
    with topical.app_context():
        get_database().dispose()


def test_some_demo_readers_chose_among_the_configured_topics(
    topical_app: Flask, tmp_path: Path
) -> None:
    seed(topical_app, tmp_path)
    with topical_app.app_context(), session_scope() as session:
        readers = session.scalars(select(Subscriber)).all()
        chosen = {r.email: r.topics for r in readers if r.topics}
    assert len(chosen) == 13  # one reader in three
    assert sum(len(topics) == 2 for topics in chosen.values()) == 6  # every sixth chose two
    assert {t for topics in chosen.values() for t in topics} == {"culture", "space-travel", "trade"}


def test_seed_leaves_a_database_with_readers_of_its_own_alone(app: Flask, tmp_path: Path) -> None:
    add_subscribers(app, ["someone@mail.example"])
    output = seed(app, tmp_path)
    assert "Seeded 2 demo releases." in output
    assert "demo readers" not in output
    assert (reader_count(app), event_count(app)) == (1, 0)
