"""Digests with a real worker and beat, a real SMTP sink and the schedule's clock driven by a
setting (DIGEST_CLOCK_FILE), never by sleeping: a simulated week, and a kill -9 in the middle
of a digest run."""

from __future__ import annotations

import contextlib
import signal
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select, update

from service.app_state import get_database
from service.models import (
    Delivery,
    DeliveryStatus,
    Frequency,
    Release,
    ReleaseKind,
    ReleaseStatus,
    Subscriber,
)
from tests.pipeline.deployment import Deployment, deployed
from tests.pipeline.helpers import add_subscribers, api_token, publish, readers, wait_until

OSLO = ZoneInfo("Europe/Oslo")


@pytest.fixture
def started_at() -> datetime:
    return datetime.now(UTC)


@contextlib.contextmanager
def deployment_for_digests(
    database_url: str, redis_url: str, tmp_path: Path, started_at: datetime, **changes: object
) -> Iterator[Deployment]:
    """A deployment whose digest schedule reads its clock from a file, set to the real time
    at first: nothing is due until the test moves the clock. The weekly digest is due on
    the third simulated day."""
    clock = tmp_path / "digest-clock"
    clock.write_text(started_at.isoformat())
    day0 = started_at.astimezone(OSLO).date()
    with deployed(
        database_url,
        redis_url,
        tmp_path,
        digest_clock_file=str(clock),
        digest_hour=8,
        digest_weekday=(day0 + timedelta(days=3)).weekday(),
        timezone="Europe/Oslo",
        **changes,
    ) as d:
        yield d


def set_clock(d: Deployment, started_at: datetime, day: int, at: time = time(8, 0, 30)) -> None:
    """The digest schedule's clock at `at` (just after 08:00) in Oslo on simulated day `day`.
    A release is published at the real time, before any simulated one: one published while
    the clock stands past a due time that has no run yet would open that run at once."""
    local_day = started_at.astimezone(OSLO).date() + timedelta(days=day)
    moment = datetime.combine(local_day, at, tzinfo=OSLO)
    assert d.settings.digest_clock_file is not None
    Path(d.settings.digest_clock_file).write_text(moment.isoformat())


def choose(app: Flask, frequencies: dict[str, Frequency]) -> None:
    with app.app_context(), get_database().session_scope() as session:
        for email, frequency in frequencies.items():
            session.execute(
                update(Subscriber).where(Subscriber.email == email).values(frequency=frequency)
            )


def digest_runs(app: Flask) -> list[tuple[str, ReleaseStatus]]:
    with app.app_context(), get_database().session_scope() as session:
        rows = session.execute(
            select(Release.digest_frequency, Release.status)
            .where(Release.kind == ReleaseKind.DIGEST)
            .order_by(Release.id)
        ).all()
        return [(str(frequency), status) for frequency, status in rows]


def mails_to(d: Deployment) -> dict[str, list[EmailMessage]]:
    by_reader: dict[str, list[EmailMessage]] = defaultdict(list)
    for mail in d.handler.received:
        for recipient in mail.recipients:
            by_reader[recipient].append(mail.message)
    return by_reader


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def settled(d: Deployment, runs: int) -> None:
    """Until `runs` digest runs exist and every one of them is sent."""
    wait_until(
        lambda: (
            len(digest_runs(d.app)) == runs
            and all(status is ReleaseStatus.SENT for _, status in digest_runs(d.app))
        ),
        timeout=60,
        what=lambda: f"{digest_runs(d.app)}\n{d.logs()}",
    )


TITLES = ["Gagarin", "Tereshkova", "Leonov", "Armstrong"]


def test_a_simulated_week_sends_each_reader_the_right_emails(
    app: Flask, database_url: str, redis_url: str, tmp_path: Path, started_at: datetime
) -> None:
    with deployment_for_digests(database_url, redis_url, tmp_path, started_at) as d:
        token = api_token(d.app)
        add_subscribers(d.app, ["now@mail.example", "weekly@mail.example"])
        add_subscribers(d.app, ["daily@mail.example"], language="en")
        choose(d.app, {"daily@mail.example": Frequency.DAILY})
        choose(d.app, {"weekly@mail.example": Frequency.WEEKLY})
        d.worker("w", concurrency=2)
        d.beat()
        client = d.app.test_client()

        def release(number: int) -> None:
            title = TITLES[number]
            english = {
                "en": {"title": f"{title} (English)", "summary": "In English", "body": "Text"}
            }
            publish(client, token, title=title, translations=english if number != 1 else None)

        release(0)  # day 0
        wait_until(lambda: len(mails_to(d)["now@mail.example"]) == 1, what=d.logs)
        set_clock(d, started_at, 1)  # the first daily digest
        settled(d, runs=1)
        release(1)  # one at a time: the reader who wants each at once gets them in order
        wait_until(lambda: len(mails_to(d)["now@mail.example"]) == 2, what=d.logs)
        release(2)
        wait_until(lambda: len(mails_to(d)["now@mail.example"]) == 3, what=d.logs)
        set_clock(d, started_at, 2)  # the second daily digest
        settled(d, runs=2)
        set_clock(d, started_at, 3)  # nothing new for the daily reader; the weekly digest
        settled(d, runs=3)
        set_clock(d, started_at, 3, at=time(7, 0))  # before day 3's digests: none is opened
        release(3)
        wait_until(lambda: len(mails_to(d)["now@mail.example"]) == 4, what=d.logs)
        set_clock(d, started_at, 4)
        settled(d, runs=4)
        set_clock(d, started_at, 10)  # the next week's digest
        settled(d, runs=5)
        assert [frequency for frequency, _ in digest_runs(d.app)] == [
            "daily",
            "daily",
            "weekly",
            "daily",
            "weekly",
        ]

        mails = mails_to(d)
        assert sorted(mails) == ["daily@mail.example", "now@mail.example", "weekly@mail.example"]
        # At once: each release in its own email, in Norwegian.
        assert [m["Subject"] for m in mails["now@mail.example"]] == TITLES
        # Daily: three digests in English, newest first; Tereshkova has no English version.
        daily = [text_of(m) for m in mails["daily@mail.example"]]
        assert len(daily) == 3
        assert listed_titles(daily[0]) == ["Gagarin (English)"]
        assert listed_titles(daily[1]) == ["Leonov (English)", "Tereshkova"]
        assert listed_titles(daily[2]) == ["Armstrong (English)"]
        assert all("today" in m["Subject"] for m in mails["daily@mail.example"])
        # Weekly: two digests in Norwegian, the first with the week's three releases.
        weekly = [text_of(m) for m in mails["weekly@mail.example"]]
        assert [listed_titles(text) for text in weekly] == [
            ["Leonov", "Tereshkova", "Gagarin"],
            ["Armstrong"],
        ]
        assert all("denne uken" in m["Subject"] for m in mails["weekly@mail.example"])
        for message in (*mails["daily@mail.example"], *mails["weekly@mail.example"]):
            assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert "/unsubscribe/" in message["List-Unsubscribe"]


def listed_titles(text: str) -> list[str]:
    """The titles a digest's text part lists, in order (each underlined with dashes)."""
    lines = text.replace("\r\n", "\n").split("\n")
    return [
        lines[i - 1]
        for i in range(1, len(lines))
        if lines[i] and set(lines[i]) == {"-"} and lines[i - 1].strip()
    ]


def test_kill_9_during_a_digest_run_sends_each_reader_one_digest(
    app: Flask, database_url: str, redis_url: str, tmp_path: Path, started_at: datetime
) -> None:
    with deployment_for_digests(
        database_url, redis_url, tmp_path, started_at, send_rate=200.0
    ) as d:
        token = api_token(d.app)
        everyone = readers(600, prefix="daily")
        add_subscribers(d.app, everyone)
        choose(d.app, dict.fromkeys(everyone, Frequency.DAILY))
        first = d.worker("first", concurrency=2)
        d.beat()
        publish(d.app.test_client(), token, title="Gagarin")
        publish(d.app.test_client(), token, title="Tereshkova")
        wait_until(lambda: held_for_digests(d.app) == 2 * len(everyone), what=d.logs)
        set_clock(d, started_at, 1)
        wait_until(lambda: len(d.handler.received) >= 150, what=d.logs)
        d.kill(first, signal.SIGKILL)
        first.wait(timeout=10)
        assert len(d.handler.received) < len(everyone), "the run ended before the kill"
        d.worker("second", concurrency=2)
        settled(d, runs=1)
        by_reader = mails_to(d)
        assert set(by_reader) == set(everyone)
        # One digest each: a copy the relay took just as the worker died is sent again with
        # the same Message-ID (mail clients show it once), at most one per connection.
        assert {len({m["Message-ID"] for m in copies}) for copies in by_reader.values()} == {1}
        extra = sum(len(copies) - 1 for copies in by_reader.values())
        assert extra <= d.settings.smtp_connections
        for copies in by_reader.values():
            assert listed_titles(text_of(copies[0])) == ["Tereshkova", "Gagarin"]


def held_for_digests(app: Flask) -> int:
    with app.app_context(), get_database().session_scope() as session:
        return len(
            session.scalars(select(Delivery.id).where(Delivery.status == DeliveryStatus.HELD)).all()
        )
