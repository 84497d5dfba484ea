"""The publisher's desk is behind a login (CONTRACT §5): redirects, CSRF, safe `next`, limits."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from werkzeug.security import generate_password_hash

from service.db import get_database
from service.models import Publisher
from tests.conftest import csrf_token
from tests.pipeline.helpers import NOW, add_subscribers, api_token, publish

EMAIL = "desk@press.example"
PASSWORD = "correct horse battery"


@pytest.fixture
def publisher(app: Flask) -> str:
    api_token(app, EMAIL)  # creates the publisher with PASSWORD
    return EMAIL


def log_in(
    client: FlaskClient, email: str = EMAIL, password: str = PASSWORD, next_path: str = ""
) -> tuple[int, str]:
    query = f"?next={next_path}" if next_path else ""
    form = client.get(f"/admin/login{query}")
    answer = client.post(
        f"/admin/login{query}",
        data={"csrf_token": csrf_token(form.text), "email": email, "password": password},
    )
    return answer.status_code, answer.headers.get("Location", "")


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


def test_signing_out_ends_the_session(client: FlaskClient, publisher: str) -> None:
    log_in(client)
    desk = client.get("/admin")
    answer = client.post("/admin/logout", data={"csrf_token": csrf_token(desk.text)})
    assert answer.status_code == 303
    assert client.get("/admin").status_code in (302, 303)


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
