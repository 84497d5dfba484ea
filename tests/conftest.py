"""Real parts: Redis (embedded unless REDIS_URL is set), an aiosmtpd sink, SQLite, and
PostgreSQL when TEST_DATABASE_URL is set (every app-level test then runs on both)."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from celery.worker import state as worker_state
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import update
from sqlalchemy.orm import Session

from service import create_app
from service.app_state import get_database
from service.config import Settings
from service.db import Base, utcnow
from service.domain import subscriptions
from service.embedded_redis import EmbeddedRedis
from service.mailsink import MailSink, SinkHandler
from service.models import ConsentSource, Release, SubscriberStatus, SuppressionReason
from tests.bounces import signing
from tests.databases import postgres_schema
from tests.pipeline.helpers import add_subscribers, api_token
from workers import create_celery

DATABASES = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = EmbeddedRedis().start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def sink() -> Iterator[MailSink]:
    server = MailSink(SinkHandler()).start()
    yield server
    server.stop()


@pytest.fixture(scope="session", params=DATABASES)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'pressroom.db'}"
        return
    with postgres_schema("pressroom_test") as url:
        yield url


def make_settings(database_url: str, redis_url: str, smtp_url: str, **changes: object) -> Settings:
    values: dict[str, object] = {
        "secret_key": "test-secret-key-not-for-production",
        "database_url": database_url,
        "redis_url": redis_url,
        "smtp_url": smtp_url,
        "base_url": "http://press.example",
        "mail_from": "Pressroom <noreply@press.example>",
        "bounce_address": "bounces@press.example",
        "webhook_secret": signing.WEBHOOK_SECRET,
        "mailgun_webhook_signing_key": signing.MAILGUN_KEY,
        "sendgrid_webhook_public_key": signing.SENDGRID_PUBLIC_KEY,
        "ses_sns_topic_arns": (signing.SES_TOPIC,),
        # The tests' webhook receivers listen on 127.0.0.1; refusals are tested with it off.
        "webhook_allow_private": True,
        "signup_rate_limit": "1000/minute",
        "address_rate_limit": "1000/minute",
        "task_queue": f"pressroom-test-{uuid.uuid4().hex[:8]}",
        "testing": True,
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def app(database_url: str, redis_url: str, sink: MailSink) -> Iterator[Flask]:
    application = create_app(make_settings(database_url, redis_url, sink.url))
    with application.app_context():
        upgrade()
    yield application
    with application.app_context():
        get_database().dispose()


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "app" not in request.fixturenames:
        return
    application: Flask = request.getfixturevalue("app")
    drain_tasks(application)
    with application.app_context():
        with get_database().session_scope() as session:
            # A correction holds its original (RESTRICT): let go first, or the delete fails.
            session.execute(update(Release).values(corrects_id=None))
            for table in reversed(Base.metadata.sorted_tables):
                session.execute(table.delete())
        application.extensions["pressroom.limiter"].reset()
    request.getfixturevalue("sink").handler.clear()


def drain_tasks(application: Flask) -> None:
    """Drop queued tasks and wait for the worker to finish its current one, so that no mail
    from one test reaches the next."""
    queue = application.extensions["pressroom.settings"].task_queue
    client = redis.Redis.from_url(application.extensions["pressroom.redis_url"])
    client.delete(queue)
    client.close()
    deadline = time.monotonic() + 10
    while (worker_state.active_requests or worker_state.reserved_requests) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.02)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """A session for domain tests; nothing it does is committed."""
    with app.app_context():
        db_session = get_database().sessionmaker()
        try:
            yield db_session
        finally:
            db_session.rollback()
            db_session.close()


@pytest.fixture(scope="session")
def worker(app: Flask) -> Iterator[None]:
    """A real Celery worker (solo pool, in a thread) consuming this app's queue."""
    celery = create_celery(app)
    with start_worker(celery, pool="solo", perform_ping_check=False, loglevel="WARNING"):
        yield


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def link_in(text_body: str, path: str) -> str:
    match = re.search(rf"http://press\.example(/{path}/[A-Za-z0-9._\-]+)", text_body)
    assert match, f"no /{path}/ link in the mail"
    return match.group(1)


ROOT = Path(__file__).resolve().parents[1]


# The desk's publisher (created by `api_token(app, EMAIL)`, with PASSWORD), and signing in.
EMAIL = "desk@press.example"
PASSWORD = "correct horse battery"


def log_in(
    client: FlaskClient, email: str = EMAIL, password: str = PASSWORD, next_path: str = ""
) -> tuple[int, str]:
    """The desk's login form, fetched and posted: (status code, Location header or "")."""
    query = f"?next={next_path}" if next_path else ""
    form = client.get(f"/admin/login{query}")
    answer = client.post(
        f"/admin/login{query}",
        data={"csrf_token": csrf_token(form.text), "email": email, "password": password},
    )
    return answer.status_code, answer.headers.get("Location", "")


@pytest.fixture
def desk(app: Flask, client: FlaskClient) -> FlaskClient:
    """A client signed in to the desk as EMAIL. Modules whose desk needs the Celery worker
    extend it: `def desk(desk, worker): return desk`."""
    api_token(app, EMAIL)
    assert log_in(client)[0] == 303
    return client


# Confirmation invitations (tests/web/test_desk_invitations.py, tests/cli/test_invite.py).
PENDING_NB = ["kari@mail.example", "ola@mail.example"]
PENDING_EN = ["jane@mail.example"]


@pytest.fixture
def readers(app: Flask) -> Iterator[None]:
    """Three imported readers pending (two nb, one en), and others who are never invited."""
    add_subscribers(app, PENDING_NB, status=SubscriberStatus.PENDING, language="nb")
    add_subscribers(app, PENDING_EN, status=SubscriberStatus.PENDING, language="en")
    add_subscribers(app, ["confirmed@mail.example"])
    add_subscribers(app, ["left@mail.example"], status=SubscriberStatus.UNSUBSCRIBED)
    add_subscribers(app, ["bounced@mail.example"], status=SubscriberStatus.BOUNCED)
    add_subscribers(app, ["suppressed@mail.example"], status=SubscriberStatus.PENDING)
    with app.app_context(), get_database().session_scope() as session:
        subscriptions.suppress(
            session, "suppressed@mail.example", SuppressionReason.COMPLAINED, now=utcnow()
        )
        signup = subscriptions.Signup("form@mail.example", "nb", [], ConsentSource.FORM, "v1")
        subscriptions.subscribe(session, signup, now=utcnow())  # got its own confirmation
    yield
