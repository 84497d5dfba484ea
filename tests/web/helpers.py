"""Building blocks for web tests: the desk's pages and forms, the reader's pages, reading a page
as a reader sees it, and requests at once."""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from html import unescape
from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import insert, select, update
from werkzeug.test import TestResponse

from service.app_state import get_database
from service.db import utcnow
from service.domain import releases, subscriptions
from service.domain.tokens import TokenSigner
from service.embedded_redis import free_port
from service.mailsink import MailSink, ReceivedMail
from service.models import Delivery, DeliveryStatus, Release, ReleaseStatus, Subscriber
from tests.conftest import csrf_token
from tests.pipeline.helpers import add_subscribers
from workers.tasks import sweep

# The desk's subscriber list and its import (test_desk_subscribers, test_address_doors).
LIST = "/admin/subscribers"
IMPORT = "/admin/subscribers/import"
EXPORT = "/admin/subscribers/export.csv"
IMPORT_TIMEOUT = 60.0  # seconds for a worker to finish an import on a slow, shared machine


def text_of(answer: TestResponse) -> str:
    """The page as a reader sees it: tags out, entities decoded, spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", answer.text)).split())


def listed(answer: TestResponse) -> list[str]:
    """The addresses in the table, top to bottom."""
    return re.findall(r'<td class="address[^"]*"[^>]*>(?:<a [^>]*>)?([^<]+)', answer.text)


def post_file(
    desk: FlaskClient,
    content: bytes | str,
    *,
    filename: str = "list.csv",
    token: str | None = None,
    lang: str = "en",
    **fields: str,
) -> TestResponse:
    """POST the import form: a refusal, or a redirect to the job's page."""
    form = desk.get(f"{IMPORT}?lang={lang}")  # the page language sticks to the session
    if token is None:
        token = csrf_token(form.text)
    body = content.encode() if isinstance(content, str) else content
    data: dict[str, object] = {"csrf_token": token, **fields}
    data["file"] = (io.BytesIO(body), filename)
    return desk.post(IMPORT, data=data, content_type="multipart/form-data")


def job_id_of(answer: TestResponse) -> str:
    assert answer.status_code == 303, answer.status_code
    match = re.fullmatch(rf"{IMPORT}/([A-Za-z0-9_-]+)", urlsplit(answer.headers["Location"]).path)
    assert match, answer.headers["Location"]
    return match.group(1)


def running(answer: TestResponse) -> bool:
    return '<meta http-equiv="refresh"' in answer.text


def wait_for_report(desk: FlaskClient, job_id: str) -> TestResponse:
    """The job's page once the worker is done with it."""
    deadline = time.monotonic() + IMPORT_TIMEOUT
    while True:
        page = desk.get(f"{IMPORT}/{job_id}")
        assert page.status_code == 200
        if not running(page):
            return page
        assert time.monotonic() < deadline, "the import did not end in time"
        time.sleep(0.05)


def upload(desk: FlaskClient, content: bytes | str, **options: str) -> TestResponse:
    """Upload → follow the redirect → wait for the report; a refusal is answered at once."""
    answer = post_file(desk, content, **options)
    location = urlsplit(answer.headers.get("Location", "")).path
    if answer.status_code != 303 or not location.startswith(f"{IMPORT}/"):
        return answer
    return wait_for_report(desk, job_id_of(answer))


# Confirmation invitations (test_desk_invitations, tests/cli/test_invite.py).
INVITE = "/admin/subscribers/invite"


def click(desk: FlaskClient, *, lang: str = "en") -> str:
    """The subscribers page's button: the page, then its form posted; the page it leads to."""
    page = desk.get(f"{LIST}?lang={lang}")
    answer = desk.post(INVITE, data={"csrf_token": csrf_token(page.text)})
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(LIST)
    return text_of(desk.get(LIST))


def settled(app: Flask, sink: MailSink, count: int) -> list[ReceivedMail]:
    """The mail that arrived once no invitation waits any more (and a moment more)."""
    received = sink.handler.wait_for(count)
    deadline = time.monotonic() + 15
    while waiting(app) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    return sink.handler.received[:] or received


def waiting(app: Flask) -> int:
    with app.app_context(), get_database().session_scope() as session:
        return len(
            session.scalars(
                select(Subscriber.id).where(
                    Subscriber.invited_at.is_not(None), Subscriber.invitation_sent_at.is_(None)
                )
            ).all()
        )


def recipients(mails: list[ReceivedMail]) -> list[str]:
    return sorted(address for mail in mails for address in mail.recipients)


# A broker that is gone, and the sweep that carries out what it owes (test_doorbell).
def dead_redis_url() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"


def run_sweep(app: Flask) -> dict[str, int]:
    with app.app_context():
        return sweep.run()


# Many requests at once (test_concurrency).
THREADS = 6


def at_once(action: Callable[[int], int]) -> list[int]:
    """Run `action` in THREADS threads released together; returns their status codes."""
    barrier = threading.Barrier(THREADS)
    codes: list[int] = []

    def run(n: int) -> None:
        barrier.wait()
        codes.append(action(n))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return codes


# The desk's release form (test_desk_releases).
GAGARIN = "60 år siden Jurij Gagarin erobret verdensrommet"


def form(page_html: str, **fields: object) -> dict[str, object]:
    values: dict[str, object] = {
        "csrf_token": csrf_token(page_html),
        "title": GAGARIN,
        "summary": "Den 12. april 1961 ble Gagarin det første mennesket i verdensrommet.",
        "body": "Han gikk **én gang** rundt jorden.",
        "language": "nb",
        "email": "yes",
        "fallback_to_primary": "yes",
        "translation_title": "",
        "translation_summary": "",
        "translation_body": "",
        "publish_at": "",
        "topics": "",
        "intent": "save",
    }
    values.update(fields)
    return values


def stored(app: Flask, release_id: int) -> Release:
    with app.app_context(), get_database().session_scope() as session:
        release = session.get(Release, release_id)
        assert release is not None
        session.expunge(release)
        return release


# The reader's pages (test_reader_pages).
def load(app: Flask, uid: str) -> Subscriber | None:
    with app.app_context(), get_database().session_scope() as session:
        return session.scalar(select(Subscriber).where(Subscriber.uid == uid))


def token_for(app: Flask, uid: str, kind: str) -> str:
    signer: TokenSigner = app.extensions["pressroom.signer"]
    row = load(app, uid)
    assert row is not None
    return {
        "confirm": subscriptions.confirm_token,
        "unsubscribe": subscriptions.unsubscribe_token,
        "preferences": subscriptions.preferences_token,
    }[kind](signer, row)


def subscribe_form(client: FlaskClient, email: str, **extra: str) -> tuple[int, str]:
    page = client.get("/")
    answer = client.post(
        "/subscribe", data={"csrf_token": csrf_token(page.text), "email": email, **extra}
    )
    return answer.status_code, answer.text


# Numbers on the desk's pages (test_desk_numbers, tests/browser/test_desk_numbers.py).
NBSP = "\u00a0"


def a_send_under_way(app: Flask, *, paused: bool = False) -> int:
    """A send to 1,200 readers: 450 sent in 12 s (37.5 a second, 37.5 % done), 750 waiting
    (20 s left at that rate), `paused` or not. Its tasks never run: the numbers stay put."""
    ids = add_subscribers(app, [f"reader{n}@mail.example" for n in range(1200)])
    now = utcnow()
    with app.app_context(), get_database().session_scope() as session:
        draft = releases.parse_release(
            {"title": "Tall på norsk", "summary": "Kort", "language": "nb"}, now=now
        )
        release = releases.create_release(session, draft, publisher_id=None, now=now)
        releases.publish(session, release.id, now=now)
        release_id = release.id
        session.execute(
            update(Release)
            .where(Release.id == release_id)
            .values(
                status=ReleaseStatus.PAUSED if paused else ReleaseStatus.SENDING,
                planned_at=now,
                send_started_at=now - timedelta(seconds=12),
                send_finished_at=now,  # holds the rate still (the view reads until then)
            )
            .execution_options(synchronize_session=False)
        )
        session.execute(
            insert(Delivery),
            [
                {
                    "release_id": release_id,
                    "subscriber_id": subscriber_id,
                    "language": "nb",
                    "status": DeliveryStatus.SENT if n < 450 else DeliveryStatus.PENDING,
                    "attempts": 1 if n < 450 else 0,
                }
                for n, subscriber_id in enumerate(ids)
            ],
        )
    return release_id
