"""`flask demo seed` (what `make run` does after migrating): a working demo login, seeded once."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Flask
from sqlalchemy import func, select

from service.db import session_scope, utcnow
from service.domain import publishers
from service.models import Release, ReleaseStatus
from tests.cli.test_publisher_commands import can_log_in, flask, token_works


def release_count(app: Flask) -> int:
    with app.app_context(), session_scope() as session:
        return session.scalar(select(func.count()).select_from(Release)) or 0


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

    again = flask(app, "demo", "seed", "--login-file", str(login_file))
    assert again.exit_code == 0, again.output
    assert json.loads(login_file.read_text()) == login
    assert release_count(app) == 2


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
    with app.app_context(), session_scope() as session:
        assert publishers.find_publisher(session, "desk@pressroom.example") is None
