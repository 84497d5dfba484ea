"""A schedule typed on the desk across a clock change (issue 10, item 14): a time the clocks
skip is refused, naming the gap, in the desk's language; a time they repeat is taken as the
first of the two, and the desk says which."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from service.app_state import get_database
from service.models import Release, ReleaseStatus
from tests.web.helpers import form, stored


def last_sunday(month: int) -> date:
    """Europe/Oslo changes its clocks on the last Sunday of March and of October (at 01:00
    UTC); next year's, so that the schedule lies in the future."""
    year = datetime.now(UTC).year + 1
    last = date(year, month, 31)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def releases_stored(app: Flask) -> int:
    with app.app_context(), get_database().session_scope() as session:
        return session.scalar(select(func.count()).select_from(Release)) or 0


@pytest.mark.parametrize(
    ("lang", "says"),
    [
        (
            "en",
            "02:30 does not exist on {day:%-d} March {day:%Y} in Europe/Oslo: the clocks "
            "move forward from 02:00 to 03:00.",
        ),
        (
            "nb",
            "02:30 finnes ikke {day:%-d}. mars {day:%Y} i Europe/Oslo: klokka stilles "
            "fram fra 02:00 til 03:00.",
        ),
    ],
)
def test_a_time_the_clocks_skip_is_refused_naming_the_gap(
    app: Flask, desk: FlaskClient, lang: str, says: str
) -> None:
    day = last_sunday(3)
    page = desk.get(f"/admin/releases/new?lang={lang}")
    answer = desk.post(
        "/admin/releases/new", data=form(page.text, publish_at=f"{day.isoformat()}T02:30")
    )
    assert answer.status_code == 422
    assert says.format(day=day) in answer.text
    assert releases_stored(app) == 0


def test_editing_a_schedule_into_the_gap_is_refused_too(app: Flask, desk: FlaskClient) -> None:
    day = last_sunday(3)
    page = desk.get("/admin/releases/new?lang=en")
    created = desk.post("/admin/releases/new", data=form(page.text, publish_at=f"{day}T01:30"))
    assert created.status_code == 303
    release_id = int(created.headers["Location"].rsplit("/", 1)[-1])
    before = stored(app, release_id).publish_at
    editor = desk.get(f"/admin/releases/{release_id}")
    answer = desk.post(
        f"/admin/releases/{release_id}", data=form(editor.text, publish_at=f"{day}T02:15")
    )
    assert answer.status_code == 422
    assert "02:15 does not exist" in answer.text
    assert stored(app, release_id).publish_at == before


@pytest.mark.parametrize(
    ("lang", "says"),
    [
        ("en", "the first of the two was taken, 02:30 CEST (UTC+2)."),
        ("nb", "den første av de to ble valgt, 02:30 CEST (UTC+2)."),
    ],
)
def test_the_repeated_hour_takes_the_first_and_says_so(
    app: Flask, desk: FlaskClient, lang: str, says: str
) -> None:
    day = last_sunday(10)
    page = desk.get(f"/admin/releases/new?lang={lang}")
    answer = desk.post("/admin/releases/new", data=form(page.text, publish_at=f"{day}T02:30"))
    assert answer.status_code == 303
    release = stored(app, int(answer.headers["Location"].rsplit("/", 1)[-1]))
    assert release.status is ReleaseStatus.SCHEDULED
    # 02:30 CEST is 00:30 UTC; the second 02:30 (CET) would be 01:30 UTC.
    assert release.publish_at == datetime(day.year, day.month, day.day, 0, 30, tzinfo=UTC)
    shown = desk.get(answer.headers["Location"]).text
    assert says in shown


def test_an_ordinary_schedule_says_nothing_about_clocks(desk: FlaskClient) -> None:
    day = last_sunday(10) - timedelta(days=7)
    page = desk.get("/admin/releases/new?lang=en")
    answer = desk.post("/admin/releases/new", data=form(page.text, publish_at=f"{day}T02:30"))
    assert answer.status_code == 303
    assert "twice" not in desk.get(answer.headers["Location"]).text


def test_the_editor_and_the_publish_page_say_which_of_the_two_a_schedule_is(
    app: Flask, desk: FlaskClient
) -> None:
    """The field shows 02:30 for both; a note says which (here the second, set by the API)."""
    from tests.pipeline.helpers import api_token

    day = last_sunday(10)
    second = datetime(day.year, day.month, day.day, 1, 30, tzinfo=UTC)  # 02:30 CET
    answer = desk.post(
        "/api/v1/releases",
        json={"title": "Klokka", "language": "nb", "publish_at": second.isoformat()},
        headers={"Authorization": f"Bearer {api_token(app)}"},
    )
    assert answer.status_code == 201
    release_id = answer.get_json()["id"]
    says = "02:30 CET (UTC+1): the second of the two 02:30 on"
    editor = desk.get(f"/admin/releases/{release_id}?lang=en")
    assert f"{day}T02:30" in editor.text and says in editor.text
    assert says in desk.get(f"/admin/releases/{release_id}/publish").text
    # Saved again unchanged, it stays the second.
    shown = f"{day}T02:30"
    desk.post(
        f"/admin/releases/{release_id}", data=form(editor.text, title="Klokka", publish_at=shown)
    )
    assert stored(app, release_id).publish_at == second
