"""Health for load balancers and orchestrators.

- `GET /healthz`: the process answers (a liveness probe): 200 `{"status": "ok"}`, whatever
  the database or Redis do, so that an orchestrator does not restart a web process for an
  outage elsewhere.
- `GET /readyz`: the process can serve (a readiness probe): the database answers, its schema
  is at the migrations' head, and Redis answers. 200 `{"status": "ready", "checks": {...}}`,
  or 503 `{"status": "unavailable", "checks": {...}}` where each part says "ok" or why not
  (the error's kind, never a URL or a password), with `Retry-After`. Each part has
  CHECK_SECONDS: a database host that drops packets makes the probe say so, not hang.

Neither needs a login, both are left out of rate limits and metrics, and neither sets a
cookie. Kubernetes' probe conventions (kubernetes.io/docs/reference/using-api/health-checks).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as OutOfTime
from pathlib import Path
from typing import TypeVar

import redis
from alembic.script import ScriptDirectory
from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from service.app_state import get_database, redis_url
from service.db import Database
from service.redis_sentinel import connect

bp = Blueprint("health", __name__)

CHECK_SECONDS = 2.0  # how long each part of readiness may take to answer
RETRY_AFTER_SECONDS = 5
T = TypeVar("T")
# Checks run here, so that one that hangs costs a thread of this pool, not the request's.
_CHECKS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readiness")


class TooSlow(Exception):
    """A check did not answer within CHECK_SECONDS."""


def within(seconds: float, call: Callable[[], T]) -> T:
    """`call()`'s result, in a thread of the checks' pool; raises TooSlow after `seconds`
    (the call goes on in its thread), or what `call` raised."""
    try:
        return _CHECKS.submit(call).result(timeout=seconds)
    except OutOfTime:
        raise TooSlow() from None


@bp.get("/healthz")
def healthz() -> Response:
    return _no_store(jsonify(status="ok"))


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    database, url = get_database(), redis_url()
    checks = {"database": "ok", "migrations": "ok", "redis": _redis(url)}
    try:
        current = within(CHECK_SECONDS, lambda: _schema_revision(database))
    except (SQLAlchemyError, TooSlow) as error:
        checks["database"] = _why(error)
        checks["migrations"] = "unknown: the database is unreachable"
    else:
        checks["migrations"] = _migrations(current, current_app.extensions["migrate"].directory)
    ready = all(state == "ok" for state in checks.values())
    answer = _no_store(jsonify(status="ready" if ready else "unavailable", checks=checks))
    if not ready:
        answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return answer, 200 if ready else 503


def _why(error: Exception) -> str:
    if isinstance(error, TooSlow):
        return f"unreachable (no answer in {CHECK_SECONDS:g} s)"
    return f"unreachable ({type(error).__name__})"


def _schema_revision(database: Database) -> set[str]:
    """The revisions the database says it is at (Alembic's alembic_version table)."""
    with database.engine.connect() as connection:
        if not connection.dialect.has_table(connection, "alembic_version"):
            return set()
        return set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())


def _migrations(current: set[str], directory: str) -> str:
    """ "ok" when the database is at the code's head, or ahead of it: at revisions this code
    does not know, which a newer release's `db upgrade` wrote. During a rolling upgrade the
    migrations run first, and the web processes still on the old code must stay ready; one
    whose code is newer than the database is not."""
    try:
        heads = migration_heads(directory)
        known = migration_revisions(directory)
    except Exception as error:  # no migrations folder beside the code: a broken install
        return f"unknown: the migrations could not be read ({type(error).__name__})"
    if current == heads or (current and not current & known):
        return "ok"
    at = ", ".join(sorted(current)) or "none"
    return f"not at head: the database is at {at}, the code at {', '.join(sorted(heads))}"


def migration_heads(directory: str) -> set[str]:
    """The head revisions of the migrations in `directory`."""
    return set(_scripts(directory).get_heads())


def migration_revisions(directory: str) -> set[str]:
    """Every revision of the migrations in `directory`."""
    return {revision.revision for revision in _scripts(directory).walk_revisions()}


@functools.cache
def _scripts(directory: str) -> ScriptDirectory:
    """The migrations in `directory`, read once per process."""
    return ScriptDirectory(str(Path(directory)))


def _redis(url: str) -> str:
    try:
        within(CHECK_SECONDS + 1, _health_client(url).ping)
    except (redis.RedisError, TooSlow) as error:
        return _why(error)
    return "ok"


@functools.cache
def _health_client(url: str) -> redis.Redis:
    """A client of its own, with short timeouts: a Redis that hangs must fail the check, not
    hold the probe past its deadline."""
    return connect(url, socket_connect_timeout=CHECK_SECONDS, socket_timeout=CHECK_SECONDS)


def _no_store(answer: Response) -> Response:
    answer.headers["Cache-Control"] = "no-store"
    return answer
