"""The publisher's desk is behind a login (CONTRACT §5): redirects, CSRF, safe `next`, limits."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from werkzeug.security import generate_password_hash

from service.app_state import get_database
from service.db import utcnow
from service.models import DeskSession, Publisher
from tests.conftest import EMAIL, PASSWORD, csrf_token, log_in
from tests.pipeline.helpers import NOW, add_subscribers, api_token, publish


def test_the_desk_needs_a_login_and_comes_back_after_it(
    client: FlaskClient, publisher: str
) -> None:
    answer = client.get("/admin")
    assert answer.status_code in (302, 303)
    location = urlsplit(answer.headers["Location"])
    assert location.path == "/admin/login"
    next_path = parse_qs(location.query)["next"][0]
    assert next_path == "/admin"
    assert log_in(client, next_path=next_path) == (303, "/admin")
    desk = client.get("/admin")
    assert desk.status_code == 200
    assert EMAIL in desk.text
    assert desk.headers["Cache-Control"] == "no-store"


def test_the_desk_lists_releases_with_their_delivery(
    app: Flask, client: FlaskClient, publisher: str, worker: None
) -> None:
    add_subscribers(app, ["reader@mail.example"])
    publish(client, api_token(app, EMAIL), title="60 år siden Gagarin")
    log_in(client)
    page = client.get("/admin?lang=nb").text
    assert "60 år siden Gagarin" in page
    assert "/ 1" in page  # sent of total


@pytest.mark.parametrize(
    ("email", "password"),
    [(EMAIL, "wrong password!"), ("nobody@press.example", PASSWORD), ("", ""), (EMAIL, "")],
)
def test_a_wrong_login_is_refused_the_same_way(
    client: FlaskClient, publisher: str, email: str, password: str
) -> None:
    status, location = log_in(client, email, password)
    assert (status, location) == (401, "")
    assert client.get("/admin").status_code in (302, 303)


def test_a_login_without_csrf_token_is_refused(client: FlaskClient, publisher: str) -> None:
    answer = client.post("/admin/login", data={"email": EMAIL, "password": PASSWORD})
    assert answer.status_code == 400
    assert client.get("/admin").status_code in (302, 303)


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/admin",
        "/\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "admin",
    ],
)
def test_next_only_ever_leads_to_a_path_of_this_site(
    client: FlaskClient, publisher: str, target: str
) -> None:
    status, location = log_in(client, next_path=target)
    assert (status, location) == (303, "/admin")


def log_out(client: FlaskClient) -> int:
    desk = client.get("/admin")
    return client.post("/admin/logout", data={"csrf_token": csrf_token(desk.text)}).status_code


def signed_in(client: FlaskClient) -> bool:
    status = client.get("/admin").status_code
    assert status in (200, 302, 303)
    return status == 200


def cookie_nonce(client: FlaskClient) -> str:
    with client.session_transaction() as cookie:
        return str(cookie["_user_id"]).rsplit(":", 1)[-1]


def desk_sessions(app: Flask) -> list[DeskSession]:
    with app.app_context(), get_database().session_scope() as session:
        return list(session.scalars(select(DeskSession)))


def test_signing_out_ends_the_session(client: FlaskClient, publisher: str) -> None:
    log_in(client)
    assert log_out(client) == 303
    assert client.get("/admin").status_code in (302, 303)


def test_a_signed_out_cookie_stays_signed_out_when_redis_is_wiped(
    app: Flask, client: FlaskClient, publisher: str
) -> None:
    """Redis may lose everything (the embedded one keeps nothing on disk); sign-outs hold."""
    log_in(client)
    cookie = client.get_cookie("session")
    assert cookie is not None
    copied = cookie.value
    assert log_out(client) == 303
    # Every key of ours (rate limits, journals, this run's queues), not the whole database:
    # REDIS_URL may point the tests at a Redis that holds other things too.
    wipe = redis.Redis.from_url(app.extensions["pressroom.redis_url"])
    try:
        for key in wipe.scan_iter("pressroom*"):
            wipe.delete(key)
    finally:
        wipe.close()
    client.set_cookie("session", copied)
    assert not signed_in(client)


def test_signing_out_one_browser_leaves_another_signed_in(
    app: Flask, client: FlaskClient, publisher: str
) -> None:
    other = app.test_client()
    log_in(client)
    log_in(other)
    assert signed_in(client) and signed_in(other)
    assert log_out(client) == 303
    assert not signed_in(client)
    assert signed_in(other)


def test_a_session_older_than_its_lifetime_is_signed_out(
    app: Flask, client: FlaskClient, publisher: str
) -> None:
    log_in(client)
    lifetime = app.permanent_session_lifetime

    def opened(ago: timedelta) -> None:
        with app.app_context(), get_database().session_scope() as session:
            session.execute(update(DeskSession).values(created_at=utcnow() - ago))

    opened(lifetime - timedelta(minutes=5))
    assert signed_in(client)
    opened(lifetime + timedelta(minutes=5))
    assert not signed_in(client)


def test_the_database_never_holds_the_nonce_of_a_cookie(
    app: Flask, client: FlaskClient, publisher: str
) -> None:
    log_in(client, next_path="/admin")
    nonce = cookie_nonce(client)
    assert len(nonce) >= 40
    (row,) = desk_sessions(app)
    stored = [str(getattr(row, column.key)) for column in DeskSession.__table__.columns]
    assert not any(nonce in value for value in stored)
    assert row.nonce_hash == hashlib.sha256(nonce.encode()).hexdigest()


def test_a_new_password_signs_old_sessions_out(
    app: Flask, client: FlaskClient, publisher: str
) -> None:
    log_in(client)
    assert client.get("/admin").status_code == 200
    with app.app_context(), get_database().session_scope() as session:
        session.execute(
            update(Publisher)
            .where(Publisher.email == EMAIL)
            .values(password_hash=generate_password_hash("another long password"), created_at=NOW)
        )
    assert client.get("/admin").status_code in (302, 303)


def test_password_guessing_is_rate_limited(client: FlaskClient, publisher: str) -> None:
    statuses = [log_in(client, EMAIL, f"guess number {n}")[0] for n in range(12)]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]
    assert log_in(client)[0] == 429  # even the right password waits


def test_control_characters_at_sign_in_are_a_refusal_not_an_error(
    client: FlaskClient, publisher: str
) -> None:
    assert log_in(client, "desk\x00@press.example", PASSWORD) == (401, "")
    form = client.get("/admin/login")
    answer = client.post(
        "/admin/login",
        data={"csrf_token": csrf_token(form.text), "email": EMAIL, "password": PASSWORD},
        headers={"User-Agent": "Evil\x00Browser/1.0"},
    )
    assert answer.status_code == 303
    assert client.get("/admin").status_code == 200
