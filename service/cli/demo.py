"""`flask --app service demo seed`: a demo publisher, a few releases and readers for `make run`.

Local use only: the demo login (password and API token) is kept in a file under instance/
so that every `make run` can print it again. Nothing is seeded twice, and a database with
publishers of its own is refused: `make run` seeds only the SQLite file it made itself.

The demo readers have addresses on a reserved domain (`.example`, RFC 2606), and `make run`
delivers mail to its local sink, so publishing to them mails nobody real. Two of them are at
bounce.example and complaint.example: the sink answers their copies with a bounce and a
complaint (service/dev_reports.py), so the desk shows the whole loop. Their history (joins
and departures over the last two months) is backdated, with matching rows in the anonymous
event log, so that the desk's charts have a curve to draw from the first run.
"""

from __future__ import annotations

import json
import random
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
from flask.cli import AppGroup
from sqlalchemy import insert, select

from service.app_state import session_scope, settings
from service.config import Settings
from service.db import utcnow
from service.dev_reports import BOUNCING_DOMAIN, COMPLAINING_DOMAIN
from service.domain import publishers, releases, subscription_events
from service.models import (
    ConsentSource,
    Publisher,
    Release,
    Subscriber,
    SubscriberStatus,
    SubscriberTopic,
    SubscriptionEvent,
    SubscriptionEventKind,
)
from service.sending import control

DEMO_EMAIL = "desk@pressroom.example"
DEMO_READER_DOMAIN = "demo.pressroom.example"  # reserved (RFC 2606): never a real mailbox
DEMO_READERS_JOINED = 36  # confirmed at some point over the history; a few left again
DEMO_READERS_PENDING = 4  # signed up in the last few days, not confirmed yet
DEMO_READERS_LEFT = (5, 13, 22, 30)  # which of the joined readers unsubscribed later
# Two confirmed readers whose mail the local sink bounces and reports as spam (dev_reports).
DEMO_READER_DOMAINS = {3: BOUNCING_DOMAIN, 8: COMPLAINING_DOMAIN}
DEMO_HISTORY_DAYS = 60
DEMO_CONSENT_NOTE = "Demo data for make run: addresses on a reserved domain, mail to the sink."
DEMO_SEED = 1961  # the readers' times come from a seeded generator: the same history each time

demo_group = AppGroup("demo", help="Demo content for trying Pressroom out locally.")

DEMO_RELEASES = [
    {
        "title": "60 år siden Jurij Gagarin erobret verdensrommet",
        "summary": "12. april 1961 ble Jurij Gagarin det første mennesket i verdensrommet.",
        "body": (
            "Den **12. april 1961** skøt Vostok 1 opp fra Bajkonur. Etter 108 minutter og ett "
            "omløp rundt jorden landet Jurij Gagarin i Saratov-regionen.\n\n"
            "Ambassaden markerer dagen med en fotoutstilling som er åpen for alle."
        ),
        "language": "nb",
        "translations": {
            "en": {
                "title": "60 years since Yuri Gagarin conquered space",
                "summary": "On 12 April 1961 Yuri Gagarin became the first human in space.",
                "body": (
                    "On **12 April 1961** Vostok 1 lifted off from Baikonur. After 108 minutes "
                    "and one orbit of the Earth, Yuri Gagarin landed in the Saratov region.\n\n"
                    "The embassy marks the day with a photo exhibition open to everyone."
                ),
            }
        },
        "days_ago": 1,
    },
    {
        "title": "Pressemøte om det nye kulturprogrammet",
        "summary": "Ambassadøren presenterer høstens kulturprogram for pressen.",
        "body": "Pressemøtet holdes i ambassadens bibliotek. Akkreditering kreves ikke.",
        "language": "nb",
        "days_ago": 3,
    },
]


def _login(path: Path) -> dict[str, str]:
    if path.exists():
        return dict(json.loads(path.read_text()))
    login = {"email": DEMO_EMAIL, "password": secrets.token_urlsafe(12)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps(login))
    return login


def _seed_releases(publisher_id: int, now: datetime) -> int:
    with session_scope() as session:
        if session.scalar(select(Release.id).limit(1)) is not None:
            return 0
        for item in DEMO_RELEASES:
            fields = {k: v for k, v in item.items() if k != "days_ago"}
            published = now - timedelta(days=int(item["days_ago"]))  # type: ignore[arg-type]
            draft = releases.parse_release(
                {**fields, "published_at": published.isoformat(), "email": False}, now=now
            )
            release = releases.create_release(session, draft, publisher_id=publisher_id, now=now)
            control.publish(session, release.id, now=now)  # not emailed: owes no task
    return len(DEMO_RELEASES)


@dataclass(frozen=True)
class DemoReader:
    email: str
    status: SubscriberStatus
    language: str
    topics: tuple[str, ...]
    created_at: datetime
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None


def demo_readers(now: datetime, topics: tuple[str, ...]) -> list[DemoReader]:
    """About forty readers who signed up over the last DEMO_HISTORY_DAYS days: most confirmed
    (numbered oldest first), a few of those left again, and the last few, from the past three
    days, still pending. One in four reads English; one in three chose a topic when topics are
    offered. The same readers and history (relative to `now`) every time."""
    rng = random.Random(DEMO_SEED)
    # Sign-up times, oldest first, none in the last day (so a confirmation fits before `now`).
    ages = sorted(
        (timedelta(days=rng.uniform(1, DEMO_HISTORY_DAYS)) for _ in range(DEMO_READERS_JOINED)),
        reverse=True,
    )
    ages += sorted(
        (timedelta(hours=rng.uniform(1, 72)) for _ in range(DEMO_READERS_PENDING)), reverse=True
    )
    readers = []
    for number, age in enumerate(ages, start=1):
        created_at = now - age
        confirmed_at: datetime | None = None
        unsubscribed_at: datetime | None = None
        status = SubscriberStatus.PENDING
        if number <= DEMO_READERS_JOINED:
            status = SubscriberStatus.CONFIRMED
            confirmed_at = created_at + timedelta(minutes=rng.uniform(2, 600))
            if number in DEMO_READERS_LEFT:
                status = SubscriberStatus.UNSUBSCRIBED
                unsubscribed_at = confirmed_at + (now - confirmed_at) * rng.uniform(0.2, 0.9)
        chosen: tuple[str, ...] = ()
        if topics and number % 3 == 0:  # every sixth chose two, when there are two to choose
            first, picks = (number // 3) % len(topics), 2 if number % 6 == 0 else 1
            chosen = tuple(sorted({topics[(first + k) % len(topics)] for k in range(picks)}))
        readers.append(
            DemoReader(
                email=f"reader{number:02d}@{DEMO_READER_DOMAINS.get(number, DEMO_READER_DOMAIN)}",
                status=status,
                language="en" if number % 4 == 2 else "nb",
                topics=chosen,
                created_at=created_at,
                confirmed_at=confirmed_at,
                unsubscribed_at=unsubscribed_at,
            )
        )
    return readers


def _seed_readers(settings: Settings, now: datetime) -> int:
    """The demo readers and their history, only into a database with no readers and an empty
    event log: a list of its own, or a log of real moves, is never mixed with made-up ones."""
    readers = demo_readers(now, settings.topics)
    with session_scope() as session:
        if (
            session.scalar(select(Subscriber.id).limit(1)) is not None
            or session.scalar(select(SubscriptionEvent.id).limit(1)) is not None
        ):
            return 0
        rows: list[dict[str, Any]] = [
            {
                "uid": uuid.uuid4().hex,
                "email": reader.email,
                "status": reader.status,
                "language": reader.language,
                # A confirmation and an unsubscribe each move the version on, as they do live.
                "token_version": 1
                + sum(at is not None for at in (reader.confirmed_at, reader.unsubscribed_at)),
                "bounce_score": 0,
                "consent_at": reader.created_at,
                "consent_source": ConsentSource.IMPORT,
                "consent_text_version": settings.consent_text_version,
                "consent_note": DEMO_CONSENT_NOTE,
                "created_at": reader.created_at,
                "updated_at": reader.unsubscribed_at or reader.confirmed_at or reader.created_at,
                "confirmed_at": reader.confirmed_at,
                "unsubscribed_at": reader.unsubscribed_at,
            }
            for reader in readers
        ]
        session.execute(insert(Subscriber), rows)
        ids = dict(
            session.execute(
                select(Subscriber.email, Subscriber.id).where(
                    Subscriber.uid.in_([row["uid"] for row in rows])
                )
            ).all()
        )
        topics = [
            {"subscriber_id": ids[reader.email], "topic": topic}
            for reader in readers
            for topic in reader.topics
        ]
        if topics:
            session.execute(insert(SubscriberTopic), topics)
        # Each join and departure at its own (backdated) time, oldest first.
        moves = [(r.confirmed_at, SubscriptionEventKind.CONFIRMED) for r in readers]
        moves += [(r.unsubscribed_at, SubscriptionEventKind.UNSUBSCRIBED) for r in readers]
        for at, kind in sorted((at, kind) for at, kind in moves if at is not None):
            subscription_events.record(session, kind, at=at)
    return len(readers)


@demo_group.command("seed")
@click.option(
    "--login-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("instance/demo-login.json"),
    show_default=True,
    help="Where the demo login is kept between runs.",
)
def seed_command(login_file: Path) -> None:
    """Create the demo publisher, a few archive releases and demo readers, unless they exist."""
    with session_scope() as session:
        others = session.scalar(select(Publisher.id).where(Publisher.email != DEMO_EMAIL).limit(1))
    if others is not None:
        raise click.ClickException(
            "This database has publishers of its own: demo content is only for a demo database."
        )
    login = _login(login_file)
    now = utcnow()
    with session_scope() as session:
        publisher = publishers.find_publisher(session, login["email"])
        if publisher is None:
            publisher = publishers.create_publisher(
                session, login["email"], login["password"], name="Demo", now=now
            )
        elif publishers.authenticate(session, login["email"], login["password"], now=now) is None:
            publishers.set_password(session, publisher, login["password"])  # the file was lost
        token = login.get("token")
        if not token or publishers.publisher_for_token(session, token, now=now) is None:
            login["token"] = publishers.issue_token(session, publisher, label="demo", now=now)
            login_file.write_text(json.dumps(login))
        publisher_id = publisher.id
    seeded = _seed_releases(publisher_id, now)
    if seeded:
        click.echo(f"Seeded {seeded} demo releases.")
    readers = _seed_readers(settings(), now)
    if readers:
        click.echo(f"Seeded {readers} demo readers.")
