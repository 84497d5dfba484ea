"""Numbers on the desk's pages are written the way the page's language writes them (Babel, CLDR):
"37,5" and "1 200" in bokmål, "37.5" and "1,200" in English; never Python's own "37.5" on a
Norwegian page."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale
from sqlalchemy import update

from service.app_state import get_database
from service.models import Subscriber
from service.web import l10n
from tests.pipeline.helpers import add_subscribers
from tests.web.helpers import NBSP, a_send_under_way


def shown(html: str) -> str:
    """The page's text as a reader sees it: no tags, no attributes."""
    return re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", html))  # NBSP kept


def test_the_send_view_writes_numbers_in_the_pages_language(app: Flask, desk: FlaskClient) -> None:
    release_id = a_send_under_way(app)
    norwegian = shown(desk.get(f"/admin/releases/{release_id}/send?lang=nb").text)
    assert "37.5" not in norwegian
    assert f"37,5{NBSP}%" in norwegian  # done
    assert " 37,5 " in norwegian  # messages a second
    assert f"450 / 1{NBSP}200" in norwegian
    assert f"1{NBSP}200" in norwegian and "1200" not in norwegian
    assert "20 sek" in norwegian  # time left, written by the server too

    english = shown(desk.get(f"/admin/releases/{release_id}/send?lang=en").text)
    assert "37,5" not in english
    assert "37.5%" in english and " 37.5 " in english
    assert "450 / 1,200" in english
    assert "20s" in english or "20 sec" in english


def test_the_release_list_and_subscriber_count_group_thousands(
    app: Flask, desk: FlaskClient
) -> None:
    a_send_under_way(app)
    releases_page = shown(desk.get("/admin?lang=nb").text)
    assert f"450 / 1{NBSP}200" in releases_page
    assert f"1{NBSP}200 abonnenter" in shown(desk.get("/admin/subscribers?lang=nb").text)
    assert "1,200 subscribers" in shown(desk.get("/admin/subscribers?lang=en").text)


def test_numbers_signs_percentages_and_durations_follow_the_locale(app: Flask) -> None:
    with app.test_request_context("/"):
        with force_locale("nb"):
            assert l10n.number(1200) == f"1{NBSP}200"
            assert l10n.number(37.5, digits=1) == "37,5"
            assert l10n.signed(-3) == "\u22123" and l10n.signed(2) == "+2"
            assert l10n.signed(0) == "0"
            assert l10n.percent(0.375) == f"37,5{NBSP}%"
            assert l10n.percent(0) == f"0{NBSP}%"
            assert l10n.percent(2 / 3) == f"66,7{NBSP}%"
            assert l10n.duration(20) == "20 sek"
            assert l10n.duration(5400) == "1,5 t"
            assert l10n.gettext("Rejected: %(count)s", count=1200) == f"Avvist: 1{NBSP}200"
        with force_locale("en"):
            assert l10n.number(1200) == "1,200"
            assert l10n.signed(-3) == "-3"
            assert l10n.percent(0.375) == "37.5%"
            assert l10n.duration(240) == "4 min"


def test_a_days_date_is_the_day_on_the_desks_clock(app: Flask, desk: FlaskClient) -> None:
    """23:30 UTC on 24 November 2026 is 00:30 on the 25th in Oslo: the day shown is the 25th."""
    (reader_id,) = add_subscribers(app, ["nattugle@mail.example"])
    late = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)
    with app.app_context(), get_database().session_scope() as session:
        session.execute(
            update(Subscriber)
            .where(Subscriber.id == reader_id)
            .values(created_at=late, confirmed_at=late)
            .execution_options(synchronize_session=False)
        )
    page = shown(desk.get("/admin/subscribers?lang=nb").text)
    assert "25. nov. 2026" in page and "24. nov. 2026" not in page
