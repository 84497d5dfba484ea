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
from service.app_state import get_database
from service.mailsink import MailSink
from tests.conftest import EMAIL, PASSWORD, ROOT, csrf_token, log_in, make_settings
from tests.pipeline.helpers import api_token

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


# Reader forms whose URL holds a signed token: the token is the credential (CONTRACT §8), so
# they need no session; RFC 8058's one-click unsubscribe needs neither cookie nor token anyway.
TOKEN_FORMS = {
    "public.confirm",
    "public.unsubscribe",
    "public.save_preferences",
    "public.erase",
    "public.undo",
}


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_posted_form_carries_a_csrf_token(template: Path) -> None:
    source = template.read_text()
    for form in re.findall(r"<form\b[^>]*>.*?</form>", source, flags=re.S | re.I):
        if not re.search(r'method="post"', form, flags=re.I):
            continue
        action = re.search(r"url_for\('([\w.]+)'", form)
        if action and action.group(1) in TOKEN_FORMS:
            # A token here would only open a session that the POST does not need.
            assert "csrf_token" not in form, form[:200]
            continue
        assert "csrf_token" in form, form[:200]


def test_only_token_bearing_reader_forms_take_a_post_without_csrf(
    app: Flask, client: FlaskClient
) -> None:
    """Every form route of the site (the desk, its login, subscribe) refuses a POST that
    carries no CSRF token; only the token-bearing reader forms, the JSON API (bearer
    tokens, no cookies) and the provider webhooks (signed by the provider) do without."""
    api_token(app, EMAIL)
    assert log_in(client)[0] == 303  # signed in: the desk's own checks would come after
    urls = app.url_map.bind("press.example")
    checked = []
    for rule in app.url_map.iter_rules():
        if "POST" not in (rule.methods or ()) or rule.endpoint.startswith(("api.", "webhooks.")):
            continue
        if rule.endpoint in TOKEN_FORMS:
            continue
        values = {}
        for name, converter in rule._converters.items():
            items = getattr(converter, "items", None)
            values[name] = sorted(items)[0] if items else 1
        path = urls.build(rule.endpoint, values, method="POST")
        answer = client.post(f"{path}?lang=en", data={"email": EMAIL, "password": PASSWORD})
        assert answer.status_code == 400, (rule.endpoint, answer.status_code)
        assert "expired or came from another site" in answer.text, rule.endpoint
        checked.append(rule.endpoint)
    assert {"public.subscribe", "desk.login"} <= set(checked), checked
    assert len([e for e in checked if not e.startswith("public.")]) >= 10, checked
