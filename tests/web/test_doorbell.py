"""Answers are true when the doorbell fails (CONTRACT §8): a door that has stored its work
answers 2xx and the sweep carries the work out; a door that would leave work nobody can carry
out stores nothing and answers 503.

The broker is taken away for real: an app on a Redis port where nothing listens, or this app's
task client pointed at one. Then the broker comes back, time passes (rows moved back), the
sweep runs in this process, and a real worker sends to the real SMTP sink.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from service import create_app, dispatch
from service.app_state import get_database
from service.mailsink import MailSink
from service.models import OwedNotice, Release, ReleaseStatus, Subscriber, SubscriberStatus
from tests.conftest import EMAIL, csrf_token, link_in, log_in, make_settings
from tests.pipeline.helpers import add_subscribers, api_token
from tests.web.helpers import dead_redis_url, form, run_sweep

READERS = ["one@mail.example", "two@mail.example"]
RELEASE = {"title": "Tittel", "summary": "Sammendrag", "body": "Tekst.", "language": "nb"}


@pytest.fixture
def redis_stopped(app: Flask, database_url: str, sink: MailSink) -> Iterator[Flask]:
    """The same site and database, served by an app whose Redis (broker and limits) is gone."""
    dead = create_app(make_settings(database_url, dead_redis_url(), sink.url))
    yield dead
    with dead.app_context():
        get_database().dispose()


def time_passes(app: Flask, minutes: int = 2) -> None:
    """Move what the sweep looks at back in time, as if `minutes` had gone by."""
    back = timedelta(minutes=minutes)
    with app.app_context(), get_database().session_scope() as session:
        for release in session.scalars(select(Release).where(Release.send_started_at.is_not(None))):
            release.send_started_at -= back
        for row in session.scalars(
            select(Subscriber).where(Subscriber.notice_owed_at.is_not(None))
        ):
            row.notice_owed_at -= back


def release_row(app: Flask, release_id: int) -> Release:
    with app.app_context(), get_database().session_scope() as session:
        release = session.get(Release, release_id)
        assert release is not None
        session.expunge(release)
        return release


def subscriber_row(app: Flask, email: str) -> Subscriber:
    with app.app_context(), get_database().session_scope() as session:
        subscriber = session.scalar(select(Subscriber).where(Subscriber.email == email))
        assert subscriber is not None
        session.expunge(subscriber)
        return subscriber


def mails_to(sink: MailSink, address: str) -> int:
    return sum(address in mail.recipients for mail in sink.handler.received)


def settle(sink: MailSink, count: int) -> None:
    """Wait for `count` messages, then a moment more to see that no further one comes."""
    sink.handler.wait_for(count, timeout=60)
    time.sleep(1.0)
    assert len(sink.handler.received) == count


def test_a_publish_with_redis_stopped_is_a_201_and_the_sweep_sends_it(
    app: Flask, redis_stopped: Flask, sink: MailSink, worker: None
) -> None:
    """The issue's case: the answer was 503 "try again" while the release was stored as
    sending (and sent 75 s later), so a client that retried sent it twice."""
    add_subscribers(app, READERS)
    bearer = {"Authorization": f"Bearer {api_token(app)}"}
    answer = redis_stopped.test_client().post(
        "/api/v1/releases", json={**RELEASE, "publish": True}, headers=bearer
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    assert answer.get_json()["status"] == "sending"
    assert release_row(app, answer.get_json()["id"]).status is ReleaseStatus.SENDING

    time_passes(app)  # the broker is back (this app's), a minute and more has gone by
    run_sweep(app)
    settle(sink, len(READERS))
    assert all(mails_to(sink, reader) == 1 for reader in READERS)


def test_pause_and_resume_with_the_broker_down_answer_202_and_the_sweep_resumes(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None
) -> None:
    add_subscribers(app, READERS)
    bearer = {"Authorization": f"Bearer {api_token(app)}"}
    kept = app.extensions["pressroom.dispatch"]
    dispatch.init_app(app, dead_redis_url(), app.extensions["pressroom.settings"].task_queue)
    try:
        created = client.post("/api/v1/releases", json={**RELEASE, "publish": True}, headers=bearer)
        assert created.status_code == 201
        release_id = created.get_json()["id"]
        for action, state in (("pause", "paused"), ("resume", "sending")):
            answer = client.post(f"/api/v1/releases/{release_id}/{action}", headers=bearer)
            assert answer.status_code == 202, (action, answer.get_data(as_text=True))
            assert answer.get_json()["status"] == state
    finally:
        app.extensions["pressroom.dispatch"] = kept
    assert len(sink.handler.received) == 0
    time_passes(app)
    run_sweep(app)
    settle(sink, len(READERS))


def test_a_desk_publish_with_the_broker_down_is_done_and_the_sweep_sends_it(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None
) -> None:
    add_subscribers(app, READERS)
    api_token(app, EMAIL)
    assert log_in(client)[0] == 303
    bearer = {"Authorization": f"Bearer {api_token(app, EMAIL)}"}
    release_id = client.post("/api/v1/releases", json=RELEASE, headers=bearer).get_json()["id"]
    page = client.get(f"/admin/releases/{release_id}/publish")
    kept = app.extensions["pressroom.dispatch"]
    dispatch.init_app(app, dead_redis_url(), app.extensions["pressroom.settings"].task_queue)
    try:
        answer = client.post(
            f"/admin/releases/{release_id}/publish", data={"csrf_token": csrf_token(page.text)}
        )
    finally:
        app.extensions["pressroom.dispatch"] = kept
    assert answer.status_code == 303
    assert release_row(app, release_id).status is ReleaseStatus.SENDING
    time_passes(app)
    run_sweep(app)
    settle(sink, len(READERS))


def test_a_signup_with_the_broker_down_owes_the_confirmation_and_the_sweep_sends_it(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None, broker_down: None
) -> None:
    """ "Check your inbox" must not be a lie: the confirmation is recorded as owed in the
    signup's transaction, and sent once the broker is back. Before, the answer was 503 while
    the pending reader was stored and the 10-minute mail slot taken, so a retry got no mail."""
    form = client.post(
        "/subscribe", data={"csrf_token": csrf_token(client.get("/").text), "email": READERS[0]}
    )
    api = client.post("/api/v1/subscriptions", json={"email": READERS[1]})
    assert (form.status_code, api.status_code) == (200, 202)
    for reader in READERS:
        assert subscriber_row(app, reader).notice_owed is OwedNotice.CONFIRMATION

    app.extensions["pressroom.dispatch"] = _working_dispatch(app)
    assert run_sweep(app)["notices"] == 0  # not yet: a record younger than a minute
    time_passes(app)
    assert run_sweep(app)["notices"] == 2
    settle(sink, 2)
    assert all(mails_to(sink, reader) == 1 for reader in READERS)
    assert subscriber_row(app, READERS[0]).notice_owed is None
    assert run_sweep(app)["notices"] == 0  # settled: rung once


def test_a_confirm_with_the_broker_down_owes_the_welcome(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None
) -> None:
    client.post("/api/v1/subscriptions", json={"email": READERS[0]})
    path = link_in(
        sink.handler.wait_for(1)[0].message.get_body(("plain",)).get_content(), "confirm"
    )
    assert subscriber_row(app, READERS[0]).notice_owed is None  # rung and settled at once
    kept = app.extensions["pressroom.dispatch"]
    dispatch.init_app(app, dead_redis_url(), app.extensions["pressroom.settings"].task_queue)
    try:
        confirmed = client.post(f"{path}?lang=en")
    finally:
        app.extensions["pressroom.dispatch"] = kept
    assert confirmed.status_code == 200 and "Subscription confirmed" in confirmed.text
    row = subscriber_row(app, READERS[0])
    assert (row.status, row.notice_owed) == (SubscriberStatus.CONFIRMED, OwedNotice.WELCOME)
    time_passes(app)
    run_sweep(app)
    settle(sink, 2)  # the confirmation, then the welcome


def test_a_desk_import_with_the_broker_down_is_a_503_that_leaves_no_job(
    app: Flask, client: FlaskClient, broker_down: None
) -> None:
    """The upload lives in Redis alone, where no sweep would find it: nothing stays."""
    api_token(app, EMAIL)
    assert log_in(client)[0] == 303
    form = client.get("/admin/subscribers/import?lang=en")
    keys = redis.Redis.from_url(app.extensions["pressroom.redis_url"])
    before = set(keys.scan_iter("pressroom:import:*"))  # other tests' jobs, kept a day
    answer = client.post(
        "/admin/subscribers/import",
        data={
            "csrf_token": csrf_token(form.text),
            "file": (io.BytesIO(b"email\nnew@mail.example\n"), "list.csv"),
        },
        content_type="multipart/form-data",
    )
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "60"
    assert set(keys.scan_iter("pressroom:import:*")) == before
    keys.close()


def _working_dispatch(app: Flask) -> object:
    """This app's own task client again (the broker is back)."""
    dispatch.init_app(
        app, app.extensions["pressroom.redis_url"], app.extensions["pressroom.settings"].task_queue
    )
    return app.extensions["pressroom.dispatch"]


def test_a_desk_save_with_a_test_email_and_the_broker_down_says_saved(
    app: Flask, client: FlaskClient, broker_down: None
) -> None:
    """ "Save and send a test": the edit is stored, so the answer says so (not a 503 that
    reads as "nothing happened"); the test email alone, which stores nothing, is a 503."""
    api_token(app, EMAIL)
    assert log_in(client)[0] == 303
    page = client.get("/admin/releases/new?lang=en")
    answer = client.post("/admin/releases/new", data=form(page.text, intent="test"))
    assert answer.status_code == 303
    shown = client.get(answer.headers["Location"])
    assert "Saved. The test email could not be sent just now" in shown.text
    with app.app_context(), get_database().session_scope() as session:
        (release_id,) = session.scalars(select(Release.id)).all()
    alone = client.post(
        f"/admin/releases/{release_id}/test", data={"csrf_token": csrf_token(shown.text)}
    )
    assert alone.status_code == 503 and alone.headers["Retry-After"] == "60"


@pytest.fixture
def redis_refusing_writes(database_url: str, sink: MailSink) -> Iterator[Flask]:
    """A Redis that is up but refuses every write (maxmemory with noeviction: OOM; a replica
    after a failover answers READONLY the same way), serving the same site and database."""
    from service.embedded_redis import EmbeddedRedis

    server = EmbeddedRedis().start()
    full = redis.Redis.from_url(server.url)
    full.config_set("maxmemory-policy", "noeviction")
    full.config_set("maxmemory", "1")
    web = create_app(make_settings(database_url, server.url, sink.url))
    yield web
    with web.app_context():
        get_database().dispose()
    full.close()
    server.stop()


def test_a_redis_refusing_writes_is_a_503_for_signups_never_a_500(
    app: Flask, redis_refusing_writes: Flask
) -> None:
    api = redis_refusing_writes.test_client()
    answer = api.post("/api/v1/subscriptions", json={"email": "kari@mail.example"})
    assert answer.status_code == 503, answer.get_data(as_text=True)
    assert answer.headers["Retry-After"] and answer.json["error"]["code"] == "unavailable"
    page = api.get("/")
    form_answer = api.post(
        "/subscribe", data={"email": "ola@mail.example", "csrf_token": csrf_token(page.text)}
    )
    assert form_answer.status_code == 503
    with app.app_context(), get_database().session_scope() as session:
        assert session.scalar(select(Subscriber.id)) is None
