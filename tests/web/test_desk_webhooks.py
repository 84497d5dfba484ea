"""Outgoing webhooks on the desk: the endpoints, adding one (its secret shown once), failures
with their last error, removing one; in Norwegian first."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service import create_app
from service.app_state import get_database, session_scope
from service.domain import webhook_endpoints, webhook_outbox
from service.mailsink import MailSink
from service.models import Release, ReleaseStatus, WebhookEndpoint
from tests.conftest import csrf_token, log_in, make_settings
from tests.pipeline.helpers import api_token

NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def test_add_an_endpoint_see_its_secret_once_and_remove_it(app: Flask, desk: FlaskClient) -> None:
    page = desk.get("/admin/webhooks")
    assert page.status_code == 200
    assert "Ingen endepunkter ennå." in page.text  # Norwegian first
    token = csrf_token(page.text)

    refused = desk.post(
        "/admin/webhooks",
        data={"csrf_token": token, "url": "ftp://crm.example", "events": ["release.sent"]},
    )
    assert refused.status_code == 422
    assert "begynner med http:// eller https://" in refused.text
    no_csrf = desk.post(
        "/admin/webhooks", data={"url": "https://crm.example/h", "events": ["release.sent"]}
    )
    assert no_csrf.status_code == 400

    added = desk.post(
        "/admin/webhooks",
        data={
            "csrf_token": token,
            "url": "https://crm.example/hooks",
            "events": ["release.sent", "subscriber.bounced"],
        },
    )
    assert added.status_code == 200
    secret = re.search(r"<code>(whsec_[^<]+)</code>", added.text)
    assert secret, "the secret is shown after adding"
    with app.app_context(), session_scope() as session:
        (endpoint,) = session.query(WebhookEndpoint).all()
        assert (endpoint.events, endpoint.include_address, endpoint.secret) == (
            "subscriber.bounced,release.sent",
            False,
            secret.group(1),
        )
        endpoint_id = endpoint.id
    listed = desk.get("/admin/webhooks").text
    assert "https://crm.example/hooks" in listed and secret.group(1) not in listed

    removed = desk.post(f"/admin/webhooks/{endpoint_id}/remove", data={"csrf_token": token})
    assert removed.status_code == 303
    assert "er fjernet" in desk.get("/admin/webhooks").text
    gone = desk.post(f"/admin/webhooks/{endpoint_id}/remove", data={"csrf_token": token})
    assert gone.status_code == 404


def test_failures_show_with_their_last_error(app: Flask, desk: FlaskClient) -> None:
    with app.app_context(), session_scope() as session:
        webhook_endpoints.add(
            session, "https://crm.example/hooks", ["release.paused"], include_address=False, now=NOW
        )
        release = Release(slug="r", title="R", language="nb", status=ReleaseStatus.PAUSED)
        session.add(release)
        session.flush()
        webhook_outbox.release_changed(
            session, webhook_endpoints.EventType.RELEASE_PAUSED, release, now=NOW
        )
        (row_id,) = session.info.pop(webhook_outbox.TO_RING)  # no worker's attempt but ours
        attempt = webhook_outbox.claim(session, row_id, now=NOW)
        assert attempt is not None
        webhook_outbox.settle(
            session, attempt, error="HTTP 503", now=NOW, retry_seconds=0.5, backoff_seconds=1
        )
    page = desk.get("/admin/webhooks", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    failures = page.text.split('id="failures"', 1)[1]
    assert "release.paused" in failures and "HTTP 503" in failures
    assert attempt.event_id in failures


@pytest.fixture
def strict_desk(
    app: Flask, database_url: str, redis_url: str, sink: MailSink
) -> Iterator[FlaskClient]:
    """The desk of an app as deployed by default: WEBHOOK_ALLOW_PRIVATE unset."""
    strict = create_app(
        make_settings(database_url, redis_url, sink.url, webhook_allow_private=False)
    )
    api_token(strict)
    client = strict.test_client()
    assert log_in(client)[0] == 303
    yield client
    with strict.app_context():
        get_database().dispose()


def test_an_internal_address_is_refused_with_a_clear_message(
    app: Flask, strict_desk: FlaskClient
) -> None:
    token = csrf_token(strict_desk.get("/admin/webhooks").text)
    for url in ("http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:6379/"):
        refused = strict_desk.post(
            "/admin/webhooks", data={"csrf_token": token, "url": url, "events": ["release.sent"]}
        )
        assert refused.status_code == 422
        assert "intern nettverksadresse" in refused.text
        assert "WEBHOOK_ALLOW_PRIVATE" in refused.text
    english = strict_desk.post(
        "/admin/webhooks",
        data={"csrf_token": token, "url": "http://[::1]/", "events": ["release.sent"]},
        headers={"Accept-Language": "en"},
    )
    assert english.status_code == 422
    assert "may not go to this machine or an internal network address" in english.text
    with app.app_context(), session_scope() as session:
        assert session.query(WebhookEndpoint).count() == 0
