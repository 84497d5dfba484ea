"""What the running Flask app holds for everyone (settings, database, signer, renderer, DKIM key,
Redis and broker URLs), stored once by create_app and read here, in one place, by the web, the
CLI and the workers. This is the Flask glue: the domain is handed these objects, never reads
them here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from flask import Flask, current_app
from sqlalchemy.orm import Session

from service.config import Settings
from service.db import Database

if TYPE_CHECKING:
    from service.domain.emails import EmailRenderer
    from service.domain.mail_site import Dkim
    from service.domain.tokens import TokenSigner

SETTINGS = "pressroom.settings"
DATABASE = "pressroom.db"
SIGNER = "pressroom.signer"
EMAILS = "pressroom.emails"
DKIM = "pressroom.dkim"
REDIS_URL = "pressroom.redis_url"
BROKER_URL = "pressroom.broker_url"


def install(
    app: Flask,
    *,
    settings: Settings,
    database: Database,
    signer: TokenSigner,
    emails: EmailRenderer,
    dkim: Dkim | None,
    redis_url: str,
    broker_url: str,
) -> None:
    """Stores the app's shared objects (create_app calls this once)."""
    app.extensions.update(
        {
            SETTINGS: settings,
            REDIS_URL: redis_url,
            BROKER_URL: broker_url,
            DATABASE: database,
            SIGNER: signer,
            EMAILS: emails,
            DKIM: dkim,
        }
    )


def settings() -> Settings:
    """The current app's settings (CONTRACT.md §3)."""
    return current_app.extensions[SETTINGS]


def settings_of(app: Flask) -> Settings:
    """`app`'s settings, outside a request or app context (for init_app functions)."""
    return app.extensions[SETTINGS]


def get_database() -> Database:
    return current_app.extensions[DATABASE]


@contextmanager
def session_scope() -> Iterator[Session]:
    """A transaction on the current app's database: commits on success, rolls back on error."""
    with get_database().session_scope() as session:
        yield session


def signer() -> TokenSigner:
    return current_app.extensions[SIGNER]


def emails() -> EmailRenderer:
    return current_app.extensions[EMAILS]


def dkim() -> Dkim | None:
    """The DKIM key the release emails are signed with; None when none is configured."""
    return current_app.extensions.get(DKIM)


def redis_url() -> str:
    return current_app.extensions[REDIS_URL]


def broker_url_of(app: Flask) -> str:
    """Celery's broker for `app`: CELERY_BROKER_URL, or its Redis (service/broker.py)."""
    return app.extensions[BROKER_URL]
