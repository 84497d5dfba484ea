"""GET /healthz and GET /readyz: liveness and readiness, each part of readiness checked for
real (a database at the migrations' head, one behind, one that is down; a Redis that is
down)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import text

from service import create_app
from service.app_state import get_database
from service.embedded_redis import free_port
from service.web.health import migration_heads
from tests.conftest import make_settings


def test_a_live_process_answers_healthz_without_a_login(client: FlaskClient) -> None:
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ok"}
    assert answer.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in answer.headers


def test_a_migrated_database_and_a_redis_that_answers_are_ready(client: FlaskClient) -> None:
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "redis": "ok"},
    }


def other_app(app: Flask, **changes: object) -> Flask:
    settings = app.extensions["pressroom.settings"]
    return create_app(
        make_settings(
            str(changes.pop("database_url", settings.database_url)),
            str(changes.pop("redis_url", app.extensions["pressroom.redis_url"])),
            settings.smtp_url,
        )
    )


def test_a_database_behind_the_migrations_is_not_ready_and_says_where_it_is(
    app: Flask, tmp_path: Path
) -> None:
    behind = other_app(app, database_url=f"sqlite:///{tmp_path / 'behind.db'}")
    with behind.app_context():
        upgrade(revision="0009")
    answer = behind.test_client().get("/readyz")
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    body = answer.get_json()
    assert body["status"] == "unavailable"
    heads = ", ".join(sorted(migration_heads(behind.extensions["migrate"].directory)))
    assert body["checks"]["migrations"] == (
        f"not at head: the database is at 0009, the code at {heads}"
    )
    assert (body["checks"]["database"], body["checks"]["redis"]) == ("ok", "ok")

    never = other_app(app, database_url=f"sqlite:///{tmp_path / 'new.db'}")
    body = never.test_client().get("/readyz").get_json()
    assert body["checks"]["migrations"].startswith("not at head: the database is at none")


def test_a_database_ahead_of_the_code_is_ready_for_a_rolling_upgrade(
    app: Flask, tmp_path: Path
) -> None:
    """Upgrades run `db upgrade` first, then restart the web: meanwhile the processes on the
    old code meet a revision they do not know, and must stay ready (they all answered 503
    "not at head", and a load balancer had none left)."""
    ahead = other_app(app, database_url=f"sqlite:///{tmp_path / 'ahead.db'}")
    with ahead.app_context():
        upgrade()
        get_database().engine.dispose()
        with get_database().engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999_next'"))
    answer = ahead.test_client().get("/readyz")
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["checks"]["migrations"] == "ok"


def test_a_database_or_redis_that_is_down_is_named_without_its_address(app: Flask) -> None:
    port = free_port()  # nothing listens there
    down = other_app(
        app,
        database_url=f"postgresql://pressroom:secret-password@127.0.0.1:{port}/pressroom",
        redis_url=f"redis://:redis-password@127.0.0.1:{port}/0",
    )
    client = down.test_client()
    answer = client.get("/readyz")
    assert answer.status_code == 503
    checks = answer.get_json()["checks"]
    assert checks["database"] == "unreachable (OperationalError)"
    assert checks["migrations"] == "unknown: the database is unreachable"
    assert checks["redis"] == "unreachable (ConnectionError)"
    text = answer.get_data(as_text=True)
    assert "password" not in text and str(port) not in text
    assert client.get("/healthz").status_code == 200  # alive all the same


def test_a_database_that_takes_the_connection_and_never_answers_fails_in_seconds(
    app: Flask,
) -> None:
    import socket
    import time

    silent = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel does), says nothing
    port = silent.getsockname()[1]
    try:
        stuck = other_app(app, database_url=f"postgresql://pressroom@127.0.0.1:{port}/pressroom")
        started = time.monotonic()
        answer = stuck.test_client().get("/readyz")
        took = time.monotonic() - started
    finally:
        silent.close()
    assert answer.status_code == 503
    assert answer.get_json()["checks"]["database"] == "unreachable (no answer in 2 s)"
    assert took < 10  # the probe's own deadline, far below an orchestrator's patience
