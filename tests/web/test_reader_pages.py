"""The reader's pages through HTTP: identical answers, buttons before changes, preferences."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from service import create_app
from service.app_state import get_database
from service.db import utcnow
from service.domain import subscriptions
from service.domain.tokens import TokenSigner
from service.mailsink import MailSink
from service.models import ConsentSource, Subscriber, SubscriberStatus, Suppression
from tests.conftest import csrf_token, make_settings
from tests.web.helpers import load, subscribe_form, token_for

EMAIL = "reader@mail.example"


def make_subscriber(app: Flask, status: SubscriberStatus = SubscriberStatus.CONFIRMED) -> str:
    """A subscriber in the given state; returns its uid."""
    with app.app_context(), get_database().session_scope() as session:
        row = Subscriber(
            email=EMAIL,
            status=status,
            language="nb",
            consent_source=ConsentSource.FORM,
            consent_text_version="v1",
        )
        session.add(row)
        session.flush()
        return row.uid


def test_front_page_has_the_subscribe_box_and_its_promise(client: FlaskClient) -> None:
    page = client.get("/?lang=en")
    assert page.status_code == 200
    assert 'name="email"' in page.text
    assert 'name="csrf_token"' in page.text
    assert 'name="website"' in page.text  # the honeypot
    assert "unsubscribe at any time" in page.text


@pytest.mark.parametrize("status", list(SubscriberStatus))
def test_the_answer_is_the_same_whatever_the_address_state(
    app: Flask, client: FlaskClient, status: SubscriberStatus
) -> None:
    _, fresh_page = subscribe_form(client, "new@mail.example")
    fresh_api = client.post("/api/v1/subscriptions", json={"email": "new2@mail.example"})
    make_subscriber(app, status)
    code, page = subscribe_form(client, EMAIL)
    api = client.post("/api/v1/subscriptions", json={"email": EMAIL})
    assert code == 200
    strip = lambda html: html.replace(csrf_token(html), "") if "csrf_token" in html else html  # noqa: E731
    assert strip(page) == strip(fresh_page)
    assert (api.status_code, api.get_json()) == (fresh_api.status_code, fresh_api.get_json())
    assert (api.status_code, api.get_json()) == (202, {"status": "pending"})


def test_honeypot_submissions_are_answered_but_ignored(app: Flask, client: FlaskClient) -> None:
    code, page = subscribe_form(client, EMAIL, website="http://spam.example")
    assert (code == 200 and "Check your inbox" in page) or "innboks" in page
    with app.app_context(), get_database().session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 0


def test_repeated_signups_send_one_confirmation_mail(
    client: FlaskClient, sink: MailSink, worker: None
) -> None:
    for _ in range(3):
        assert subscribe_form(client, EMAIL)[0] == 200
    sink.handler.wait_for(1)
    time.sleep(0.7)
    assert len(sink.handler.received) == 1


def test_confirmation_mail_comes_in_the_reader_language(
    client: FlaskClient, sink: MailSink, worker: None
) -> None:
    client.post("/api/v1/subscriptions", json={"email": EMAIL, "language": "en"})
    english = sink.handler.wait_for(1)[0].message
    assert english["Subject"].startswith("Confirm your subscription")
    client.post("/api/v1/subscriptions", json={"email": "other@mail.example", "language": "nb"})
    norwegian = sink.handler.wait_for(2)[1].message
    assert norwegian["Subject"] != english["Subject"]
    assert norwegian.get_content_type() == "multipart/alternative"
    html = norwegian.get_body(("html",)).get_content()
    assert 'style="' in html and "<style" not in html  # CSS inlined


def test_confirm_get_changes_nothing_and_shows_a_button(app: Flask, client: FlaskClient) -> None:
    uid = make_subscriber(app, SubscriberStatus.PENDING)
    page = client.get(f"/confirm/{token_for(app, uid, 'confirm')}?lang=en")
    assert page.status_code == 200
    assert "<button" in page.text
    assert load(app, uid).status is SubscriberStatus.PENDING  # type: ignore[union-attr]


def test_second_confirm_post_is_a_friendly_already_confirmed(
    app: Flask, client: FlaskClient
) -> None:
    uid = make_subscriber(app, SubscriberStatus.PENDING)
    path = f"/confirm/{token_for(app, uid, 'confirm')}?lang=en"
    client.get(path)
    assert "Subscription confirmed" in client.post(path).text
    again = client.post(path)
    assert again.status_code == 200
    assert "Already confirmed" in again.text


def test_expired_confirm_link_shows_a_clear_page(app: Flask, client: FlaskClient) -> None:
    uid = make_subscriber(app, SubscriberStatus.PENDING)
    row = load(app, uid)
    old = TokenSigner(app.config["SECRET_KEY"], clock=lambda: time.time() - 8 * 86400)
    page = client.get(f"/confirm/{subscriptions.confirm_token(old, row)}?lang=en")  # type: ignore[arg-type]
    assert page.status_code == 410
    assert "expired" in page.text


def test_unsubscribe_get_shows_a_button_and_changes_nothing(
    app: Flask, client: FlaskClient
) -> None:
    uid = make_subscriber(app)
    page = client.get(f"/unsubscribe/{token_for(app, uid, 'unsubscribe')}?lang=en")
    assert page.status_code == 200
    assert "<button" in page.text and "/preferences/" in page.text
    assert load(app, uid).status is SubscriberStatus.CONFIRMED  # type: ignore[union-attr]


def test_one_click_post_without_body_or_cookie_also_unsubscribes(app: Flask) -> None:
    uid = make_subscriber(app)
    bare = app.test_client(use_cookies=False)
    answer = bare.post(f"/unsubscribe/{token_for(app, uid, 'unsubscribe')}")
    assert answer.status_code == 200  # never a redirect
    assert load(app, uid).status is SubscriberStatus.UNSUBSCRIBED  # type: ignore[union-attr]


def test_preferences_change_language_and_topics(app: Flask, client: FlaskClient) -> None:
    uid = make_subscriber(app)
    path = f"/preferences/{token_for(app, uid, 'preferences')}"
    page = client.get(path)
    assert page.status_code == 200
    assert "csrf_token" not in page.text  # the token in the URL is the credential
    answer = client.post(path, data={"language": "en", "topics": "Space, culture"})
    assert answer.status_code == 303
    row = load(app, uid)
    assert row is not None and (row.language, row.topics) == ("en", ["culture", "space"])
    assert "saved" in client.get(answer.headers["Location"] + "&lang=en").text


def test_token_bearing_forms_work_without_a_session_or_csrf_token(app: Flask) -> None:
    """CONTRACT §8: the signed token in the URL is the credential. A browser that drops
    cookies between the page and the POST (an in-app browser) still confirms, saves, leaves
    and erases; a forged token still changes nothing."""
    bare = app.test_client(use_cookies=False)
    uid = make_subscriber(app, SubscriberStatus.PENDING)
    confirmed = bare.post(f"/confirm/{token_for(app, uid, 'confirm')}?lang=en")
    assert confirmed.status_code == 200 and "Subscription confirmed" in confirmed.text
    assert load(app, uid).status is SubscriberStatus.CONFIRMED  # type: ignore[union-attr]

    preferences = f"/preferences/{token_for(app, uid, 'preferences')}"
    saved = bare.post(preferences, data={"language": "en", "topics": "space"})
    assert saved.status_code == 303
    assert (load(app, uid).language, load(app, uid).topics) == ("en", ["space"])  # type: ignore[union-attr]

    left = bare.post(f"/unsubscribe/{token_for(app, uid, 'unsubscribe')}")
    assert left.status_code == 200
    assert load(app, uid).status is SubscriberStatus.UNSUBSCRIBED  # type: ignore[union-attr]

    forged = bare.post(preferences[:-3] + "xyz", data={"language": "nb"})
    assert forged.status_code == 400 and load(app, uid).language == "en"  # type: ignore[union-attr]

    erased = bare.post(f"{preferences}/erase", data={"confirm": "yes"})
    assert erased.status_code == 200
    assert load(app, uid) is None


def test_the_subscribe_form_still_needs_csrf(app: Flask) -> None:
    bare = app.test_client(use_cookies=False)
    answer = bare.post("/subscribe", data={"email": EMAIL})
    assert answer.status_code == 400
    with app.app_context(), get_database().session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 0


def test_download_my_data(app: Flask, client: FlaskClient) -> None:
    uid = make_subscriber(app)
    answer = client.get(f"/preferences/{token_for(app, uid, 'preferences')}/data.json")
    assert answer.status_code == 200
    assert "attachment" in answer.headers["Content-Disposition"]
    assert json.loads(answer.data)["email"] == EMAIL


def test_delete_my_data_keeps_only_a_hash(app: Flask, client: FlaskClient) -> None:
    uid = make_subscriber(app)
    path = f"/preferences/{token_for(app, uid, 'preferences')}"
    refused = client.post(f"{path}/erase")
    assert refused.status_code == 422 and load(app, uid) is not None
    answer = client.post(f"{path}/erase", data={"confirm": "yes"})
    assert answer.status_code == 200
    assert load(app, uid) is None
    with app.app_context(), get_database().session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Suppression)) == 1
    assert client.get(path).status_code == 400  # the link names nobody now


@pytest.mark.parametrize(
    ("accept", "query", "expected"),
    [
        ("en-US,en;q=0.9", "", 'lang="en"'),
        ("nb-NO,nb;q=0.9", "", 'lang="nb"'),
        ("no", "", 'lang="nb"'),
        ("nn-NO", "", 'lang="nb"'),
        ("de-DE", "", 'lang="nb"'),
        ("en-US", "?lang=nb", 'lang="nb"'),
        ("nb-NO", "?lang=en", 'lang="en"'),
    ],
)
def test_language_follows_the_browser_and_lang_overrides(
    app: Flask, accept: str, query: str, expected: str
) -> None:
    page = app.test_client().get(f"/{query}", headers={"Accept-Language": accept})
    assert f"<html {expected}" in page.text


@pytest.fixture
def strict_app(app: Flask, database_url: str, redis_url: str, sink: MailSink) -> Iterator[Flask]:
    settings = app.extensions["pressroom.settings"]
    strict = create_app(
        make_settings(
            database_url,
            redis_url,
            sink.url,
            signup_rate_limit="3/minute",
            address_rate_limit="2/hour",
            task_queue=settings.task_queue,
        )
    )
    yield strict
    with strict.app_context():
        get_database().dispose()


def test_signups_are_limited_per_ip_across_form_and_api(strict_app: Flask) -> None:
    client = strict_app.test_client()
    assert subscribe_form(client, "a@mail.example")[0] == 200
    assert client.post("/api/v1/subscriptions", json={"email": "b@mail.example"}).status_code == 202
    assert subscribe_form(client, "c@mail.example")[0] == 200
    limited = client.post("/api/v1/subscriptions", json={"email": "d@mail.example"})
    assert limited.status_code == 429
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert subscribe_form(client, "e@mail.example")[0] == 429
    other_ip = strict_app.test_client()
    other_ip.environ_base["REMOTE_ADDR"] = "198.51.100.9"
    assert (
        other_ip.post("/api/v1/subscriptions", json={"email": "f@mail.example"}).status_code == 202
    )


def test_signups_are_limited_per_address_whatever_the_ip(strict_app: Flask) -> None:
    codes = []
    for n in range(3):
        client = strict_app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"198.51.100.{n + 1}"
        codes.append(client.post("/api/v1/subscriptions", json={"email": EMAIL}).status_code)
    assert codes == [202, 202, 429]


def test_security_headers(client: FlaskClient) -> None:
    headers = client.get("/").headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_unexpected_errors_show_no_traceback(app: Flask) -> None:
    assert utcnow().tzinfo is not None
    with app.test_request_context("/"):
        from service.web.errors import error_response

        body, status = error_response(500, "internal_error", "Something went wrong.")
        assert status == 500 and "Traceback" not in str(body)


def test_reloading_the_subscribe_address_leads_back_to_the_form(client: FlaskClient) -> None:
    answer = client.get("/subscribe")
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/#subscribe")


def test_offered_topics_are_checkboxes_and_nothing_else_is_accepted(
    app: Flask, database_url: str, redis_url: str, sink: MailSink
) -> None:
    settings = app.extensions["pressroom.settings"]
    topical = create_app(
        make_settings(
            database_url,
            redis_url,
            sink.url,
            topics=("culture", "space-travel"),
            task_queue=settings.task_queue,
        )
    )
    client = topical.test_client()
    page = client.get("/?lang=en")
    assert 'type="checkbox" name="topics" value="space-travel"' in page.text
    token = csrf_token(page.text)
    refused = client.post(
        "/subscribe", data={"csrf_token": token, "email": EMAIL, "topics": ["sport"]}
    )
    assert refused.status_code == 422 and "sport" in refused.text
    accepted = client.post(
        "/subscribe", data={"csrf_token": token, "email": EMAIL, "topics": ["space-travel"]}
    )
    assert accepted.status_code == 200
    with topical.app_context(), get_database().session_scope() as session:
        row = subscriptions.find_by_email(session, EMAIL)
        assert row is not None and row.topics == ["space-travel"]
        get_database().dispose()
