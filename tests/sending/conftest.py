"""Unit-level parts for the send's heart: a database of its own (SQLite, and PostgreSQL when
TEST_DATABASE_URL is set) with the tables made from the models, real Redis for the journal, and
a double of our own Transport seam (tests/sending/parts.py). SMTP itself stays real in the
integration tests (tests/pipeline, tests/workers/test_smtp.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import update

import service.models  # noqa: F401  (registers every table)
from service.db import Base, Database
from service.domain.emails import EmailRenderer
from service.domain.mail_site import MailSite
from service.domain.tokens import TokenSigner
from service.models import Release
from service.sending.messages import Composer
from tests.databases import postgres_schema
from tests.sending.parts import BACKENDS, RecordingTransport


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture(scope="module", params=BACKENDS)
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """A database of these specs' own, its tables made from the models (the migrations are
    tested in tests/test_migrations.py)."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('sending') / 'ledger.db'}"
        else:
            url = stack.enter_context(postgres_schema("pressroom_sending"))
        db = Database(url)
        Base.metadata.create_all(db.engine)
        yield db
        db.dispose()


@pytest.fixture
def db(database: Database) -> Iterator[Database]:
    yield database
    with database.session_scope() as session:
        # A correction's link to its original is RESTRICT: undone first.
        session.execute(update(Release).values(corrects_id=None))
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(table.delete())


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def composer() -> Composer:
    site = MailSite(
        base_url="http://press.example",
        mail_from="Pressroom <noreply@press.example>",
        site_name="Pressroom",
        list_id="press.example",
    )
    return Composer(EmailRenderer(), TokenSigner("test-secret-key-not-for-production"), site)
