"""Idempotency-Key on the POSTs that create (CONTRACT §8; draft-ietf-httpapi-idempotency-key-
header): a retry returns the first answer and creates nothing, readers get a release once."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from service.app_state import get_database
from service.db import utcnow
from service.mailsink import MailSink
from service.models import IdempotencyKey, Release, Subscriber
from tests.pipeline.helpers import add_subscribers, api_token

READERS = ["one@mail.example", "two@mail.example"]
RELEASE = {"title": "Tittel", "summary": "Sammendrag", "body": "Tekst.", "language": "nb"}
THREADS = 6


def post_release(
    client: FlaskClient, token: str, key: str | None, **fields: object
) -> tuple[int, dict[str, object], dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    answer = client.post("/api/v1/releases", json={**RELEASE, **fields}, headers=headers)
    return answer.status_code, answer.get_json(), dict(answer.headers)


def count(app: Flask, model: type) -> int:
    with app.app_context(), get_database().session_scope() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_a_retry_with_the_same_key_returns_the_first_answer_and_sends_once(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None
) -> None:
    add_subscribers(app, READERS)
    token = api_token(app)
    first = post_release(client, token, "8e03978e-40d5-43e8-bc93-6894a57f9324", publish=True)
    again = post_release(client, token, "8e03978e-40d5-43e8-bc93-6894a57f9324", publish=True)
    assert first[0] == again[0] == 201
    assert again[1] == first[1]  # the first answer, body and all
    assert again[2]["Location"] == first[2]["Location"] == f"/api/v1/releases/{first[1]['id']}"
    assert again[2]["Idempotent-Replayed"] == "true"
    assert count(app, Release) == 1
    sink.handler.wait_for(len(READERS), timeout=60)
    time.sleep(1.0)
    assert sorted(r for mail in sink.handler.received for r in mail.recipients) == READERS


def test_the_quoted_and_the_bare_form_name_the_same_key(app: Flask, client: FlaskClient) -> None:
    token = api_token(app)
    status, body, _ = post_release(client, token, '"release-42"')
    assert (status, post_release(client, token, "release-42")[1]) == (201, body)
    assert count(app, Release) == 1


def test_the_same_key_with_another_body_is_a_422_that_creates_nothing(
    app: Flask, client: FlaskClient
) -> None:
    token = api_token(app)
    assert post_release(client, token, "k-1")[0] == 201
    status, body, _ = post_release(client, token, "k-1", title="En annen tittel")
    assert status == 422
    assert body["error"]["code"] == "idempotency_key_reused"
    assert count(app, Release) == 1
    # Key order and spacing are not another body.
    assert post_release(client, token, "k-1", **dict(reversed(RELEASE.items())))[0] == 201


def test_keys_belong_to_their_caller(app: Flask, client: FlaskClient) -> None:
    mine, theirs = api_token(app, "a@press.example"), api_token(app, "b@press.example")
    one = post_release(client, mine, "same-key")[1]["id"]
    other = post_release(client, theirs, "same-key")[1]["id"]
    assert one != other and count(app, Release) == 2


@pytest.mark.parametrize(
    "key",
    [
        *("", '""', "two words", " padded", "x" * 256, '"' + "x" * 256 + '"', '"unterminated'),
        *("k;p=1", '"k";p=1', "(k)", '"tab\there"', '"bad \\escape \\n"'),
    ],
    ids=[
        *("empty", "empty string", "space", "padded", "256", "quoted 256", "open quote"),
        *("param", "quoted with param", "paren", "tab", "escape"),
    ],
)
def test_a_malformed_key_is_a_400_that_creates_nothing(
    app: Flask, client: FlaskClient, key: str
) -> None:
    status, body, _ = post_release(client, api_token(app), key)
    assert status == 400
    assert body["error"]["code"] == "invalid_idempotency_key"
    assert "Idempotency-Key" in body["error"]["message"]
    assert count(app, Release) == 0 and count(app, IdempotencyKey) == 0


def test_the_longest_key_is_taken_and_escapes_are_undone(app: Flask, client: FlaskClient) -> None:
    token = api_token(app)
    assert post_release(client, token, '"' + "x" * 255 + '"')[0] == 201
    assert post_release(client, token, '"say \\"hi\\""')[0] == 201
    with app.app_context(), get_database().session_scope() as session:
        assert 'say "hi"' in session.scalars(select(IdempotencyKey.key)).all()


def test_two_requests_at_once_with_one_key_create_one_release(app: Flask) -> None:
    token = api_token(app)
    barrier = threading.Barrier(THREADS)
    answers: list[tuple[int, dict[str, object], dict[str, str]]] = []

    def run() -> None:
        client = app.test_client()
        barrier.wait()
        answers.append(post_release(client, token, "at-once"))

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert count(app, Release) == 1
    assert {status for status, _, _ in answers} <= {201, 409}
    created = {body["id"] for status, body, _ in answers if status == 201}
    assert len(created) == 1
    for status, body, _ in answers:
        if status == 409:
            assert body["error"]["code"] == "idempotency_key_in_flight"


def test_a_key_in_flight_is_a_409_until_its_claim_lapses(app: Flask, client: FlaskClient) -> None:
    token = api_token(app)
    assert post_release(client, token, "slow")[0] == 201
    with app.app_context(), get_database().session_scope() as session:  # as if still running
        session.execute(update(IdempotencyKey).values(status=None, body=None, owner="x" * 32))
    status, body, _ = post_release(client, token, "slow")
    assert (status, body["error"]["code"]) == (409, "idempotency_key_in_flight")
    with app.app_context(), get_database().session_scope() as session:  # its process died
        for row in session.scalars(select(IdempotencyKey)):
            row.locked_at -= timedelta(minutes=3)
    assert post_release(client, token, "slow")[0] == 201
    assert post_release(client, token, "slow")[2]["Idempotent-Replayed"] == "true"


def test_a_key_older_than_a_day_is_forgotten_and_purged(app: Flask, client: FlaskClient) -> None:
    token = api_token(app)
    first = post_release(client, token, "yesterday")[1]["id"]
    post_release(client, token, "other")
    with app.app_context(), get_database().session_scope() as session:
        for row in session.scalars(select(IdempotencyKey)):
            row.created_at -= timedelta(hours=24, minutes=1)
    second = post_release(client, token, "yesterday")[1]["id"]
    assert second != first and count(app, Release) == 3
    with app.app_context(), get_database().session_scope() as session:
        keys = session.scalars(select(IdempotencyKey.key)).all()
        assert keys == ["yesterday"]  # "other" purged too
        assert session.scalar(select(IdempotencyKey.created_at)) > utcnow() - timedelta(hours=1)


def test_a_subscription_retried_with_its_key_sends_one_confirmation(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None
) -> None:
    """The anonymous call: keys are scoped by the endpoint alone."""
    headers = {"Idempotency-Key": '"signup-1"'}
    body = {"email": READERS[0]}
    answers = [client.post("/api/v1/subscriptions", json=body, headers=headers) for _ in "ab"]
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].get_json() == answers[1].get_json() == {"status": "pending"}
    assert answers[1].headers["Idempotent-Replayed"] == "true"
    other = client.post("/api/v1/subscriptions", json={"email": READERS[1]}, headers=headers)
    assert other.status_code == 422 and count(app, Subscriber) == 1
    sink.handler.wait_for(1)
    time.sleep(1.0)
    assert len(sink.handler.received) == 1


def test_retries_of_an_answered_signup_are_not_counted_by_the_rate_limits(
    app: Flask, database_url: str, redis_url: str, sink: MailSink
) -> None:
    """A client that retries (a lost answer, a timeout) with its key gets the first answer,
    however often: a replay signs nobody up, so the per-address limit does not count it."""
    from service import create_app
    from tests.conftest import make_settings

    strict = create_app(
        make_settings(database_url, redis_url, sink.url, address_rate_limit="2/hour")
    )
    api = strict.test_client()
    body = {"email": "retry@mail.example"}
    headers = {"Idempotency-Key": '"signup-1"'}
    answers = [api.post("/api/v1/subscriptions", json=body, headers=headers) for _ in range(5)]
    assert [a.status_code for a in answers] == [202] * 5
    assert all(a.headers.get("Idempotent-Replayed") == "true" for a in answers[1:])
    fresh = [api.post("/api/v1/subscriptions", json=body) for _ in range(2)]
    assert [a.status_code for a in fresh] == [202, 429]  # new requests still count
    strict.extensions["pressroom.limiter"].reset()
    with strict.app_context():
        get_database().dispose()
