"""Health for load balancers and orchestrators.

- `GET /healthz`: the process answers (a liveness probe): 200 `{"status": "ok"}`, whatever
  the database or Redis do, so that an orchestrator does not restart a web process for an
  outage elsewhere.
- `GET /readyz`: the process can serve (a readiness probe): the database answers, its schema
  is at the migrations' head, and Redis answers. 200 `{"status": "ready", "checks": {...}}`,
  or 503 `{"status": "unavailable", "checks": {...}}` where each part says "ok" or why not
  (the error's kind, never a URL or a password), with `Retry-After`.

Neither needs a login, both are left out of rate limits, and neither touches a session
cookie. Kubernetes' probe conventions (kubernetes.io/docs/reference/using-api/health-checks).
"""

from __future__ import annotations

import functools
from pathlib import Path

import redis
from alembic.script import ScriptDirectory
from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from service.app_state import get_database, redis_url

bp = Blueprint("health", __name__)

CHECK_SECONDS = 2.0  # how long Redis may take to answer a readiness check
RETRY_AFTER_SECONDS = 5


@bp.get("/healthz")
def healthz() -> Response:
    return _no_store(jsonify(status="ok"))


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    checks = {"database": "ok", "migrations": "ok", "redis": _redis()}
    try:
        current = _schema_revision()
    except SQLAlchemyError as error:
        checks["database"] = f"unreachable ({type(error).__name__})"
        checks["migrations"] = "unknown: the database is unreachable"
    else:
        checks["migrations"] = _migrations(current)
    ready = all(state == "ok" for state in checks.values())
    answer = _no_store(jsonify(status="ready" if ready else "unavailable", checks=checks))
    if not ready:
        answer.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return answer, 200 if ready else 503


def _schema_revision() -> set[str]:
    """The revisions the database says it is at (Alembic's alembic_version table)."""
    with get_database().engine.connect() as connection:
        if not connection.dialect.has_table(connection, "alembic_version"):
            return set()
        return set(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())


def _migrations(current: set[str]) -> str:
    heads = migration_heads(current_app.extensions["migrate"].directory)
    if current == heads:
        return "ok"
    at = ", ".join(sorted(current)) or "none"
    return f"not at head: the database is at {at}, the code at {', '.join(sorted(heads))}"


@functools.cache
def migration_heads(directory: str) -> set[str]:
    """The head revisions of the migrations in `directory` (read once per process)."""
    return set(ScriptDirectory(str(Path(directory))).get_heads())


def _redis() -> str:
    try:
        _health_client(redis_url()).ping()
    except redis.RedisError as error:
        return f"unreachable ({type(error).__name__})"
    return "ok"


@functools.cache
def _health_client(url: str) -> redis.Redis:
    """A client of its own, with short timeouts: a Redis that hangs must fail the check, not
    hold the probe past its deadline."""
    return redis.Redis.from_url(
        url, socket_connect_timeout=CHECK_SECONDS, socket_timeout=CHECK_SECONDS
    )


def _no_store(answer: Response) -> Response:
    answer.headers["Cache-Control"] = "no-store"
    return answer
