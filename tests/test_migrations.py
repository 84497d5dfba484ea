"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import MetaData, column, insert, inspect, select, table, text

from service import create_app
from service.app_state import get_database
from service.db import Base
from service.domain import stats
from service.mailsink import MailSink
from service.models import ConsentSource, SubscriberStatus, SubscriptionEvent
from tests.conftest import DATABASES, make_settings
from tests.databases import postgres_schema

SUBSCRIBER_COLUMNS_AT_0004 = (
    "uid", "email", "status", "language", "token_version", "bounce_score", "consent_at",
    "consent_source", "consent_text_version", "created_at", "updated_at", "confirmed_at",
    "unsubscribed_at",
)  # fmt: skip


def test_migrated_database_matches_the_models(app: Flask) -> None:
    with app.app_context(), get_database().engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


@pytest.fixture(params=DATABASES)
def empty_database(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, sink: MailSink
) -> Iterator[Flask]:
    """An app on a database of its own, with no tables yet."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'fresh.db'}"
        else:
            url = stack.enter_context(postgres_schema("pressroom_migration"))
        application = create_app(make_settings(url, redis_url, sink.url))
        yield application
        with application.app_context():
            get_database().dispose()


def test_the_subscription_event_log_is_backfilled_from_the_subscribers(
    empty_database: Flask,
) -> None:
    """An install upgraded to the event log shows its history, not a blank chart."""
    t1 = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
    t2 = datetime(2026, 10, 2, 9, 30, tzinfo=UTC)
    t3 = datetime(2026, 11, 3, 10, 45, tzinfo=UTC)
    readers = [
        ("stays", SubscriberStatus.CONFIRMED, t1, None, t1),
        ("left", SubscriberStatus.UNSUBSCRIBED, t1, t2, t2),
        ("bounced", SubscriberStatus.BOUNCED, t1, None, t3),
        ("never-confirmed", SubscriberStatus.UNSUBSCRIBED, None, t2, t2),
        ("pending", SubscriberStatus.PENDING, None, None, t1),
        ("left-and-asked-again", SubscriberStatus.PENDING, t2, t3, t3),
    ]
    with empty_database.app_context():
        upgrade(revision="0004")
        engine = get_database().engine
        with engine.begin() as connection:
            # The table as it stood at 0004: the model's later columns are not there yet.
            at_0004 = table("subscribers", *(column(name) for name in SUBSCRIBER_COLUMNS_AT_0004))
            connection.execute(
                insert(at_0004),
                [
                    {
                        "uid": uuid.uuid4().hex,
                        "email": f"{name}@mail.example",
                        "status": status,
                        "language": "nb",
                        "token_version": 1,
                        "bounce_score": 0,
                        "consent_at": t1,
                        "consent_source": ConsentSource.FORM,
                        "consent_text_version": "v1",
                        "created_at": t1,
                        "updated_at": updated,
                        "confirmed_at": confirmed,
                        "unsubscribed_at": unsubscribed,
                    }
                    for name, status, confirmed, unsubscribed, updated in readers
                ],
            )
        upgrade()
        with engine.connect() as connection:
            logged = connection.execute(
                select(
                    SubscriptionEvent.kind,
                    SubscriptionEvent.occurred_at,
                    SubscriptionEvent.release_id,
                )
            ).all()
        assert sorted((kind.value, at, release) for kind, at, release in logged) == sorted(
            [
                ("confirmed", t1, None),  # stays
                ("confirmed", t1, None),  # left
                ("unsubscribed", t2, None),
                ("confirmed", t1, None),  # bounced, at the row's last change
                ("bounced", t3, None),
                ("confirmed", t2, None),  # left and asked again
                ("unsubscribed", t3, None),
            ]
        )
        with get_database().session_scope() as session:
            history = stats.subscriber_history(
                session, days=365, now=t3 + timedelta(days=1), zone=ZoneInfo("Europe/Oslo")
            )
        assert history.current == 1 and history.start_total == 0
        downgrade(revision="0004")
        with engine.connect() as connection:
            assert "subscription_events" not in inspect(connection).get_table_names()


def test_an_upgrade_keeps_every_delivery_and_every_link_to_a_release(
    empty_database: Flask,
) -> None:
    """SQLite rebuilds a table to add a constraint to it (Alembic's batch mode): with foreign
    keys enforced, dropping the old `releases` would delete every delivery (ON DELETE
    CASCADE) and unlink the events and bounce reports (SET NULL). An upgrade keeps them."""
    t1 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    with empty_database.app_context():
        upgrade(revision="0011")
        engine = get_database().engine
        with engine.begin() as connection:
            tables = MetaData()
            tables.reflect(connection)
            subscriber_id = connection.execute(
                insert(tables.tables["subscribers"]).returning(column("id")),
                _reader(t1),
            ).scalar_one()
            release_id = connection.execute(
                insert(tables.tables["releases"]).returning(column("id")), _release(t1)
            ).scalar_one()
            connection.execute(
                insert(tables.tables["deliveries"]),
                {
                    "release_id": release_id,
                    "subscriber_id": subscriber_id,
                    "language": "nb",
                    "status": "sent",
                    "attempts": 1,
                },
            )
            connection.execute(
                insert(tables.tables["subscription_events"]),
                {"kind": "unsubscribed", "occurred_at": t1, "release_id": release_id},
            )
        upgrade()
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM deliveries")).scalar_one() == 1
            linked = connection.execute(text("SELECT release_id FROM subscription_events"))
            assert linked.scalar_one() == release_id
            if engine.dialect.name == "sqlite":  # enforced again once the upgrade is over
                assert connection.execute(text("PRAGMA foreign_keys")).scalar_one() == 1


def _reader(at: datetime) -> dict[str, object]:
    return {
        "uid": uuid.uuid4().hex, "email": "kept@mail.example", "status": "confirmed",
        "language": "nb", "token_version": 1, "bounce_score": 0, "consent_at": at,
        "consent_source": "form", "consent_text_version": "v1", "created_at": at,
        "updated_at": at, "confirmed_at": at,
    }  # fmt: skip


def _release(at: datetime) -> dict[str, object]:
    return {
        "slug": "gagarin", "title": "Gagarin", "summary": "", "body": "", "body_html": "",
        "language": "nb", "topics": [], "translations": {}, "fallback_to_primary": True,
        "send_email": True, "status": "sent", "published_at": at, "last_subscriber_id": 0,
        "guards_waived": "", "created_at": at, "updated_at": at,
    }  # fmt: skip
