"""`flask --app service demo seed`: a demo publisher and a few releases for `make run`.

Local use only: the demo login (password and API token) is kept in a file under instance/
so that every `make run` can print it again. Nothing is seeded twice, and a database with
publishers of its own is refused: `make run` seeds only the SQLite file it made itself.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select

from service.db import session_scope, utcnow
from service.domain import publishers, releases
from service.models import Publisher, Release

DEMO_EMAIL = "desk@pressroom.example"

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
            releases.publish(session, release.id, now=now)
    return len(DEMO_RELEASES)


@demo_group.command("seed")
@click.option(
    "--login-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("instance/demo-login.json"),
    show_default=True,
    help="Where the demo login is kept between runs.",
)
def seed_command(login_file: Path) -> None:
    """Create the demo publisher and a few archive releases, unless they exist."""
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
