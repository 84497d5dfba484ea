"""Double clicks and scripts: the same request many times at once changes things once."""

from __future__ import annotations

import time

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from service.app_state import get_database
from service.mailsink import MailSink
from service.models import Release, Subscriber, SubscriberStatus
from tests.conftest import link_in
from tests.pipeline.helpers import api_token
from tests.web.helpers import THREADS, at_once


def test_one_address_signed_up_many_times_at_once(app: Flask, sink: MailSink, worker: None) -> None:
    def signup(n: int) -> int:
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"198.51.100.{n + 1}"
        answer = client.post("/api/v1/subscriptions", json={"email": "double@mail.example"})
        return answer.status_code

    assert at_once(signup) == [202] * THREADS
    with app.app_context(), get_database().session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 1
    sink.handler.wait_for(1)
    time.sleep(0.7)
    assert len(sink.handler.received) == 1  # one confirmation mail, not one per request


def test_a_confirm_link_clicked_many_times_at_once_confirms_once(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None
) -> None:
    client.post("/api/v1/subscriptions", json={"email": "clicker@mail.example"})
    path = link_in(
        sink.handler.wait_for(1)[0].message.get_body(("plain",)).get_content(), "confirm"
    )
    browsers = [app.test_client() for _ in range(THREADS)]
    for browser in browsers:
        browser.get(path)

    def confirm(n: int) -> int:
        return browsers[n].post(path).status_code

    assert at_once(confirm) == [200] * THREADS
    sink.handler.wait_for(2)
    time.sleep(0.7)
    assert len(sink.handler.received) == 2  # the confirmation and exactly one welcome
    with app.app_context(), get_database().session_scope() as session:
        row = session.scalar(select(Subscriber))
        assert row is not None and row.status is SubscriberStatus.CONFIRMED
        assert row.token_version == 2


def test_releases_created_at_once_with_one_title_each_get_their_own_slug(app: Flask) -> None:
    """Without an Idempotency-Key these are distinct releases: each is created (never a 500
    from the slug's UNIQUE constraint) under a slug of its own."""
    token = api_token(app)
    body = {"title": "Samme tittel", "summary": "S", "body": "B", "language": "nb"}

    def create(n: int) -> int:
        answer = app.test_client().post(
            "/api/v1/releases", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        return answer.status_code

    assert at_once(create) == [201] * THREADS
    with app.app_context(), get_database().session_scope() as session:
        slugs = set(session.scalars(select(Release.slug)))
    assert slugs == {"samme-tittel"} | {f"samme-tittel-{n}" for n in range(2, THREADS + 1)}
