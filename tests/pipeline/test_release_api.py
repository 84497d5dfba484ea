"""The publisher API: what it refuses, and the newsroom habits it keeps."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from service import create_app
from service.app_state import get_database
from service.mailsink import MailSink
from service.models import Release
from tests.conftest import make_settings
from tests.pipeline.helpers import add_subscribers, api_token, publish, release_state, wait_until

VALID = {"title": "Tittel", "summary": "Kort", "body": "Tekst", "language": "nb"}


def post(client: FlaskClient, token: str, body: Any, **kwargs: Any) -> Any:
    return client.post(
        "/api/v1/releases", json=body, headers={"Authorization": f"Bearer {token}"}, **kwargs
    )


def release_count(app: Flask) -> int:
    with app.app_context(), get_database().session_scope() as session:
        return session.scalar(select(func.count()).select_from(Release)) or 0


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"title": "Two\r\nBcc: x@evil.example"}, 422, "invalid_input"),
        ({"title": "Line\nbreak"}, 422, "invalid_input"),
        ({"title": "C1 next line\x85Bcc: x@evil.example"}, 422, "invalid_input"),
        ({"title": "C1 control \x9b31m"}, 422, "invalid_input"),
        ({"summary": "C1 control \x9b31m"}, 422, "invalid_input"),
        ({"title": "Lone surrogate \ud800"}, 422, "invalid_input"),
        ({"title": ""}, 422, "invalid_input"),
        ({"title": "x" * 301}, 422, "invalid_input"),
        ({"title": 5}, 422, "invalid_input"),
        ({"body": "x" * 200_001}, 422, "invalid_input"),
        ({"language": "de"}, 422, "invalid_input"),
        ({"language": None}, 422, "invalid_input"),
        ({"publish_at": "next tuesday"}, 422, "invalid_input"),
        ({"publish_at": "2030-01-01T09:00:00"}, 422, "invalid_input"),
        ({"publish_at": "9999-12-31T23:59:00-12:00"}, 422, "invalid_input"),
        ({"publish_at": "9999-12-31T23:30:00+00:00"}, 422, "invalid_input"),
        ({"publish_at": "0001-01-01T00:30:00+01:00"}, 422, "invalid_input"),
        ({"publish": "yes"}, 422, "invalid_input"),
        ({"email": 1}, 422, "invalid_input"),
        ({"topics": "not a list of slugs!"}, 422, "invalid_input"),
        ({"translations": {"de": {"title": "x"}}}, 422, "invalid_input"),
        ({"translations": {"nb": {"title": "x"}}}, 422, "invalid_input"),
        ({"translations": {"en": "text"}}, 422, "invalid_input"),
        ({"translations": {"en": {"title": "a\rb"}}}, 422, "invalid_input"),
        ({"unknown": 1}, 422, "invalid_input"),
    ],
)
def test_bad_release_input_is_refused_and_changes_nothing(
    app: Flask, client: FlaskClient, change: dict[str, Any], status: int, code: str
) -> None:
    token = api_token(app)
    answer = post(client, token, {**VALID, **change})
    assert answer.status_code == status, answer.get_data(as_text=True)
    assert answer.get_json()["error"]["code"] == code
    assert answer.get_json()["error"]["message"]
    assert release_count(app) == 0


def test_malformed_requests_and_missing_tokens(app: Flask, client: FlaskClient) -> None:
    token = api_token(app)
    auth = {"Authorization": f"Bearer {token}"}
    cases = [
        (client.post("/api/v1/releases", json=VALID), 401),
        (client.post("/api/v1/releases", json=VALID, headers={"Authorization": "Bearer x"}), 401),
        (client.post("/api/v1/releases", data="{broken", headers=auth,
                     content_type="application/json"), 400),
        (client.post("/api/v1/releases", data="title=x", headers=auth), 415),
        (client.post("/api/v1/releases", json=[VALID], headers=auth), 400),
        (client.post("/api/v1/releases", json={**VALID, "body": "x" * (1024 * 1024 + 10)},
                     headers=auth), 413),
        (client.post("/api/v1/releases/999/publish", headers=auth), 404),
        (client.get("/api/v1/releases/999", headers=auth), 404),
        (client.get("/api/v1/subscribers?limit=abc", headers=auth), 422),
        (client.get("/api/v1/subscribers?status=everyone", headers=auth), 422),
    ]  # fmt: skip
    for answer, status in cases:
        assert answer.status_code == status, answer.get_data(as_text=True)
        assert answer.get_json()["error"]["message"]
    assert release_count(app) == 0


class ActiveContent(HTMLParser):
    """Collects what a browser or mail client would run: scripts, event handlers, script URLs.
    Escaped text that merely spells them out is harmless and is not collected."""

    def __init__(self) -> None:
        super().__init__()
        self.risky: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "iframe", "object", "embed"):
            self.risky.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.risky.append(f"{tag} {name}")
            if name in ("href", "src") and (value or "").strip().lower().startswith(
                ("javascript:", "data:", "vbscript:")
            ):
                self.risky.append(f"{tag} {name}={value}")


def test_hostile_markdown_never_reaches_page_or_email(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None
) -> None:
    token = api_token(app)
    add_subscribers(app, ["reader@mail.example"])
    body = (
        "<script>alert(1)</script>\n\n[click](javascript:alert(2)) "
        '<img src=x onerror="alert(3)">\n\n[x](JaVaScRiPt:alert(4)) <javascript:alert(5)> '
        "![i](data:text/html;base64,PHNjcmlwdD4=)\n\n**fine**"
    )
    release = publish(client, token, title="<b>Tittel</b> & «sitat»", body=body)
    mail = sink.handler.wait_for(1)[0].message
    html = mail.get_body(("html",)).get_content()
    page = client.get(f"/releases/{release['slug']}").text
    for text in (html, page):
        found = ActiveContent()
        found.feed(text)
        assert found.risky == []
        assert "<strong>fine</strong>" in text
        assert "&lt;b&gt;Tittel&lt;/b&gt;" in text  # shown as the text it is
    assert str(mail["Subject"]) == "<b>Tittel</b> & «sitat»"  # a header is text, not HTML


def test_archive_only_and_backdated_releases_are_not_emailed(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None
) -> None:
    token = api_token(app)
    add_subscribers(app, ["reader@mail.example"])
    archive = publish(client, token, email=False)
    old = (datetime.now(UTC) - timedelta(days=5)).isoformat()
    backdated = publish(client, token, title="Fra arkivet", published_at=old)
    recent = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    publish(client, token, title="I går", published_at=recent)
    asked = publish(client, token, title="Gammel, men send", published_at=old, email=True)
    mails = sink.handler.wait_for(2)
    time.sleep(0.7)
    assert sorted(str(m.message["Subject"]) for m in sink.handler.received) == [
        "Gammel, men send",
        "I går",
    ]
    assert len(mails) == 2
    for release in (archive, backdated):
        state = release_state(client, token, release["id"])
        assert state["status"] == "published" and state["delivery"]["total"] == 0
        assert client.get(f"/releases/{release['slug']}").status_code == 200
    assert release_state(client, token, asked["id"])["delivery"]["total"] == 1


def test_each_reader_gets_their_language_and_fallback_can_be_turned_off(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None
) -> None:
    token = api_token(app)
    add_subscribers(app, ["norsk@mail.example"], language="nb")
    add_subscribers(app, ["english@mail.example"], language="en")
    translations = {"en": {"title": "60 years since Gagarin", "summary": "S", "body": "Text"}}
    publish(client, token, translations=translations)
    first = {m.recipients[0]: str(m.message["Subject"]) for m in sink.handler.wait_for(2)}
    assert first == {
        "norsk@mail.example": "60 år siden Jurij Gagarin erobret verdensrommet",
        "english@mail.example": "60 years since Gagarin",
    }
    sink.handler.clear()
    publish(client, token, title="Bare på norsk")  # english readers get the Norwegian text
    publish(client, token, title="Bare for norske lesere", fallback_to_primary=False)
    sink.handler.wait_for(3)
    time.sleep(0.7)
    got = Counter((m.recipients[0], str(m.message["Subject"])) for m in sink.handler.received)
    assert got == Counter(
        {
            ("norsk@mail.example", "Bare på norsk"): 1,
            ("english@mail.example", "Bare på norsk"): 1,
            ("norsk@mail.example", "Bare for norske lesere"): 1,
        }
    )


def test_editing_a_sent_release_never_sends_it_again(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None
) -> None:
    token = api_token(app)
    add_subscribers(app, ["reader@mail.example"])
    release = publish(client, token)
    wait_until(lambda: release_state(client, token, release["id"])["status"] == "sent")
    auth = {"Authorization": f"Bearer {token}"}
    edited = client.patch(
        f"/api/v1/releases/{release['id']}", json={"title": "Rettet tittel"}, headers=auth
    )
    assert edited.status_code == 200 and edited.get_json()["title"] == "Rettet tittel"
    again = client.post(f"/api/v1/releases/{release['id']}/publish", headers=auth)
    assert again.status_code == 202 and again.get_json()["delivery"]["state"] == "sent"
    time.sleep(0.7)
    assert len(sink.handler.received) == 1
    assert "Rettet tittel" in client.get(f"/releases/{release['slug']}").text


def test_changing_the_main_language_keeps_every_text(app: Flask, client: FlaskClient) -> None:
    token = api_token(app)
    auth = {"Authorization": f"Bearer {token}"}
    english = {"title": "In English", "summary": "Short", "body": "**Text**"}
    both = post(client, token, {**VALID, "translations": {"en": english}}).get_json()
    swapped = client.patch(f"/api/v1/releases/{both['id']}", json={"language": "en"}, headers=auth)
    assert swapped.status_code == 200, swapped.text
    answer = swapped.get_json()
    assert (answer["language"], answer["title"], answer["body"]) == ("en", "In English", "**Text**")
    assert answer["translations"] == {"nb": {"title": "Tittel", "summary": "Kort", "body": "Tekst"}}

    # Without a version in the new language, the main text only changes its label.
    alone = post(client, token, VALID).get_json()
    relabelled = client.patch(
        f"/api/v1/releases/{alone['id']}", json={"language": "en"}, headers=auth
    ).get_json()
    assert (relabelled["language"], relabelled["title"]) == ("en", "Tittel")
    assert relabelled["translations"] == {}


@pytest.mark.parametrize("release_id", ["2147483648", "99999999999999999999999", "0"])
def test_an_id_no_database_can_hold_is_a_404(
    app: Flask, client: FlaskClient, release_id: str
) -> None:
    auth = {"Authorization": f"Bearer {api_token(app)}"}
    for path in ("", "/publish"):
        method = client.post if path else client.get
        answer = method(f"/api/v1/releases/{release_id}{path}", headers=auth)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("query", ["/releases?before=2147483648", "/subscribers?after=2147483648"])
def test_a_cursor_past_any_id_is_refused(app: Flask, client: FlaskClient, query: str) -> None:
    answer = client.get(f"/api/v1{query}", headers={"Authorization": f"Bearer {api_token(app)}"})
    assert answer.status_code == 422
    assert answer.get_json()["error"]["code"] == "invalid_input"


def test_dkim_signs_the_headers_that_matter(
    app: Flask, database_url: str, redis_url: str, sink: MailSink, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    (tmp_path / "dkim.pem").write_bytes(pem)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signed_app = create_app(
        make_settings(
            database_url,
            redis_url,
            sink.url,
            dkim_private_key_file=str(tmp_path / "dkim.pem"),
            dkim_selector="press",
            dkim_domain="press.example",
        )
    )
    from base64 import b64encode

    from service.sending.messages import Composer

    add_subscribers(app, ["reader@mail.example"])
    with signed_app.app_context(), get_database().session_scope() as session:
        from service.domain import releases

        draft = releases.parse_release(VALID, now=datetime.now(UTC))
        release = releases.create_release(session, draft, publisher_id=None, now=datetime.now(UTC))
        composer = Composer.from_extensions(signed_app.extensions)
        message = composer.release_message(release, "nb", now=datetime.now(UTC))
        raw = message.for_recipient("reader@mail.example", "uid")
        get_database().dispose()
    assert raw.startswith(b"DKIM-Signature:")
    signature = raw.split(b"\r\n\r\n", 1)[0]
    for header in (b"list-unsubscribe", b"list-unsubscribe-post", b"from", b"message-id"):
        assert header in signature.lower()
    record = b"v=DKIM1; k=rsa; p=" + b64encode(public)
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: record)
    assert not dkim.verify(raw.replace(b"Tekst", b"Tekst!"), dnsfunc=lambda n, timeout=5: record)


def test_a_publish_at_that_has_passed_is_due_at_once(app: Flask, client: FlaskClient) -> None:
    """The schema allows any time, and the API takes it (it once answered 422 "must be in the
    future", a rule no schema can state): a time that has passed schedules the release as due,
    and the next sweep publishes it, as it does a schedule whose time came."""
    from workers.tasks import sweep

    token = api_token(app)
    headers = {"Authorization": f"Bearer {token}"}
    created = client.post(
        "/api/v1/releases",
        json={"title": "Sent late", "language": "nb", "publish_at": "2001-01-01T00:00:00Z"},
        headers=headers,
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.json["status"] == "scheduled"
    draft = client.post(
        "/api/v1/releases", json={"title": "Draft", "language": "nb"}, headers=headers
    )
    moved = client.patch(
        f"/api/v1/releases/{draft.json['id']}",
        json={"publish_at": "2000-01-01T00:00:00Z"},
        headers=headers,
    )
    assert moved.status_code == 200 and moved.json["status"] == "scheduled"
    with app.app_context():
        assert sweep.run()["scheduled"] == 2
    for release_id in (created.json["id"], draft.json["id"]):
        state = client.get(f"/api/v1/releases/{release_id}", headers=headers).json
        assert state["status"] in ("sending", "sent")


def test_a_tab_in_a_title_is_refused_as_the_subject_could_not_keep_it(
    app: Flask, client: FlaskClient
) -> None:
    token = api_token(app)
    answer = client.post(
        "/api/v1/releases",
        json={"title": "Tittel\tBcc: z@angriper.example", "language": "nb"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 422 and answer.json["error"]["code"] == "invalid_input"
