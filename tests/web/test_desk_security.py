"""What protects the desk: cookie flags, HSTS on https, a CSP that scripts cannot slip past,
and CSRF tokens on every form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service import create_app
from service.db import get_database
from service.mailsink import MailSink
from tests.conftest import ROOT, csrf_token, make_settings
from tests.pipeline.helpers import api_token
from tests.web.test_desk_login import EMAIL, PASSWORD

TEMPLATES = sorted((ROOT / "service" / "templates").rglob("*.html"))
# The mail preview shows an email's own HTML, in a frame with a policy of its own.
OWN_POLICY = {"admin/preview_text.html"}


@pytest.fixture
def https_app(database_url: str, redis_url: str, sink: MailSink, app: Flask) -> Iterator[Flask]:
    secure = create_app(
        make_settings(database_url, redis_url, sink.url, base_url="https://press.example")
    )
    yield secure
    with secure.app_context():
        get_database().dispose()


def test_on_https_the_session_cookie_is_secure_and_hsts_is_sent(https_app: Flask) -> None:
    api_token(https_app, EMAIL)
    client = https_app.test_client()
    form = client.get("/admin/login", base_url="https://press.example")
    assert form.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    answer = client.post(
        "/admin/login",
        base_url="https://press.example",
        data={"csrf_token": csrf_token(form.text), "email": EMAIL, "password": PASSWORD},
    )
    assert answer.status_code == 303
    cookie = next(c for c in answer.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_on_plain_http_there_is_no_hsts_but_the_cookie_is_still_http_only(
    client: FlaskClient,
) -> None:
    api_token(client.application, EMAIL)
    form = client.get("/admin/login")
    assert "Strict-Transport-Security" not in form.headers
    answer = client.post(
        "/admin/login",
        data={"csrf_token": csrf_token(form.text), "email": EMAIL, "password": PASSWORD},
    )
    cookie = next(c for c in answer.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_the_policy_allows_scripts_only_from_this_site(client: FlaskClient) -> None:
    policy = client.get("/admin/login").headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_holds_inline_script_or_style(template: Path) -> None:
    name = template.relative_to(ROOT / "service" / "templates").as_posix()
    source = template.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", source), "inline <script>"
    assert not re.search(r"\son[a-z]+=", source), "inline event handler"
    if name not in OWN_POLICY:
        assert not re.search(r"\sstyle=|<style", source), "inline style"


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_posted_form_carries_a_csrf_token(template: Path) -> None:
    source = template.read_text()
    for form in re.findall(r"<form\b[^>]*>.*?</form>", source, flags=re.S | re.I):
        if not re.search(r'method="post"', form, flags=re.I):
            continue
        if "unsubscribe" in form and "List-Unsubscribe" in form:
            continue  # RFC 8058's one-click POST: no cookie, no token, by design
        assert "csrf_token" in form, form[:200]
