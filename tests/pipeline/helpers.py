"""Building blocks for pipeline tests: publishers, many subscribers at once, waiting."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, update

from service.app_state import get_database
from service.domain import publishers
from service.mailsink import MailSink
from service.models import (
    Frequency,
    Release,
    ReleaseStatus,
    Subscriber,
    SubscriberStatus,
    SubscriberTopic,
)
from service.sending import ledger
from tests.rows import subscriber_rows

if TYPE_CHECKING:  # deployment.py imports tests.conftest, which imports this module
    from tests.pipeline.deployment import Deployment

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def api_token(app: Flask, email: str = "desk@press.example") -> str:
    with app.app_context(), get_database().session_scope() as session:
        publisher = publishers.find_publisher(session, email) or publishers.create_publisher(
            session, email, "correct horse battery", now=NOW
        )
        return publishers.issue_token(session, publisher, now=NOW)


def add_subscribers(
    app: Flask,
    emails: Iterable[str],
    *,
    status: SubscriberStatus = SubscriberStatus.CONFIRMED,
    language: str = "nb",
    topics: tuple[str, ...] = (),
) -> list[int]:
    """Insert readers in bulk, as an import would; returns their ids."""
    rows = subscriber_rows(emails, status=status, language=language, now=NOW)
    with app.app_context(), get_database().session_scope() as session:
        ids = list(session.scalars(insert(Subscriber).returning(Subscriber.id), rows))
        if topics:
            session.execute(
                insert(SubscriberTopic),
                [{"subscriber_id": i, "topic": t} for i in ids for t in topics],
            )
    return ids


def held_for_a_daily_reader(app: Flask, *, published_at: datetime) -> int:
    """A release "Gagarin" as its send leaves it, held for one daily reader
    (daily@mail.example) and sent to nobody at once; returns its id."""
    (reader,) = add_subscribers(app, ["daily@mail.example"])
    with app.app_context(), get_database().session_scope() as session:
        session.execute(
            update(Subscriber).where(Subscriber.id == reader).values(frequency=Frequency.DAILY)
        )
        release = Release(
            slug="gagarin",
            title="Gagarin",
            language="nb",
            status=ReleaseStatus.SENDING,
            published_at=published_at,
            send_started_at=published_at,
        )
        session.add(release)
        session.flush()
        while release.planned_at is None:
            ledger.plan_chunk(session, release, now=published_at)
        ledger.finish_if_done(session, release, now=published_at)
        return release.id


def publish(client: FlaskClient, token: str, **fields: object) -> dict[str, object]:
    """POST a release (published at once unless told otherwise); a field given as None is
    left out of the body (the API refuses null for a true/false field)."""
    body = {"title": "60 år siden Jurij Gagarin erobret verdensrommet", "summary": "Sammendrag",
            "body": "Den **12. april 1961** ble Gagarin det første mennesket i verdensrommet.",
            "language": "nb", "publish": True, **fields}  # fmt: skip
    body = {name: value for name, value in body.items() if value is not None}
    answer = client.post(
        "/api/v1/releases", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()


def resume(client: FlaskClient, token: str, release_id: object) -> None:
    """Resume a paused send through the API, as press staff do once they have seen why."""
    answer = client.post(
        f"/api/v1/releases/{release_id}/resume", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 202, answer.get_data(as_text=True)


def release_state(client: FlaskClient, token: str, release_id: object) -> dict[str, object]:
    answer = client.get(
        f"/api/v1/releases/{release_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()


def send_state(client: FlaskClient, token: str, release_id: object) -> str:
    """The release's delivery state as the API says it: sending, paused, sent, ..."""
    return str(release_state(client, token, release_id)["delivery"]["state"])


def wait_until(
    check: Callable[[], bool], timeout: float = 60.0, what: str | Callable[[], str] = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            detail = what() if callable(what) else what
            raise TimeoutError(f"not reached in {timeout}s: {detail}")
        time.sleep(0.05)


def assert_fails_alone(app: Flask, client: FlaskClient, sink: MailSink, address: str) -> None:
    """A stored address no server can take, between two good ones: that delivery alone fails,
    the others get the release, and the send finishes (it must not fail at every retry)."""
    token = api_token(app)
    add_subscribers(app, ["first@mail.example", address, "last@mail.example"])
    release = publish(client, token)
    wait_until(
        lambda: release_state(client, token, release["id"])["delivery"]["state"] == "sent",
        what="state sent",
    )
    received = sorted(r for mail in sink.handler.received for r in mail.recipients)
    assert received == ["first@mail.example", "last@mail.example"]
    delivery = release_state(client, token, release["id"])["delivery"]
    assert (delivery["sent"], delivery["failed"], delivery["pending"]) == (2, 1, 0)


def readers(n: int, prefix: str = "reader") -> list[str]:
    return [f"{prefix}{i:05d}@mail.example" for i in range(n)]


def finished(d: Deployment, token: str, release_id: object) -> bool:
    state = release_state(d.app.test_client(), token, release_id)["delivery"]
    return state["state"] == "sent"


def assert_each_once(d: Deployment, expected: list[str], *, duplicates_allowed: int = 0) -> None:
    counts = d.handler.counts()
    assert set(counts) == set(expected), "someone was missed or someone else got mail"
    extra = sum(c - 1 for c in counts.values())
    assert extra <= duplicates_allowed, f"{extra} duplicates"


def delivery(d: Deployment, token: str, release_id: object) -> dict[str, object]:
    return release_state(d.app.test_client(), token, release_id)["delivery"]  # type: ignore[return-value]


# The relay of test_shutdown (and the bound tests/test_deploy_files checks the unit files against).
RELAY_LATENCY = 0.25  # seconds before each reply to MAIL, RCPT and DATA
MESSAGE_TIME = 3 * RELAY_LATENCY
SHUTDOWN_BUDGET = 5.0 + MESSAGE_TIME  # the issue's bound: 5 s of SIGTERM plus one message
