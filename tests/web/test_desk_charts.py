"""The desk's charts page and its data: behind the login, the same numbers as the tables, and
a one-click unsubscribe from a real release email counted for that release exactly once."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.app_state import get_database
from service.db import utcnow
from service.domain import subscriptions
from service.domain.tokens import Purpose
from service.mailsink import MailSink
from service.models import ConsentSource
from tests.conftest import EMAIL
from tests.pipeline.helpers import add_subscribers, api_token, publish, release_state, wait_until


def join_and_leave(app: Flask, joined: list[str], left: list[str]) -> None:
    """Readers sign up and confirm, and some of them leave, through the lifecycle functions."""
    signer = app.extensions["pressroom.signer"]
    with app.app_context(), get_database().session_scope() as session:
        for email in joined:
            signup = subscriptions.Signup(
                email=email,
                language="nb",
                topics=[],
                source=ConsentSource.FORM,
                consent_text_version="v1",
            )
            subscriptions.subscribe(session, signup, now=utcnow())
            row = subscriptions.find_by_email(session, email)
            assert row is not None
            token = subscriptions.confirm_token(signer, row)
            subscriptions.confirm(session, signer, token, now=utcnow())
        for email in left:
            row = subscriptions.find_by_email(session, email)
            assert row is not None
            token = subscriptions.unsubscribe_token(signer, row)
            subscriptions.unsubscribe(session, signer, token, now=utcnow())


def cells(html: str, row_header: str) -> list[str]:
    """The numbers of the table row whose header holds `row_header`."""
    for row in re.findall(r"<tr>(.*?)</tr>", html, flags=re.S):
        if row_header in row:
            return [
                re.sub(r"<[^>]+>", "", c).strip()
                for c in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)
            ]
    raise AssertionError(f"no row for {row_header!r}")


def test_the_charts_need_a_login(client: FlaskClient) -> None:
    answer = client.get("/admin/charts")
    assert answer.status_code in (302, 303)
    assert answer.headers["Location"].startswith("/admin/login")
    data = client.get("/admin/charts/data.json?days=90")
    assert data.status_code == 401
    assert data.get_json()["error"]["code"] == "unauthorized"


def test_the_page_shows_the_numbers_as_tables_and_loads_charts_from_this_site(
    app: Flask, desk: FlaskClient
) -> None:
    join_and_leave(app, ["a@mail.example", "b@mail.example", "c@mail.example"], ["b@mail.example"])
    page = desk.get("/admin/charts?lang=en")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    html = page.text
    assert re.search(r"<strong>2</strong>\s*subscribers now", html)
    assert re.search(r"<strong>3</strong>\s*joined in the period", html)
    assert re.search(r"<strong>1</strong>\s*left in the period", html)
    assert re.search(r"<strong>\+2</strong>\s*net change", html)
    today = utcnow().astimezone(app.extensions["pressroom.settings"].zone).date()
    # Joined, unsubscribed, bounced, erased, net change, subscribers at the end of the day.
    assert cells(html, f'datetime="{today.isoformat()}"') == ["3", "1", "0", "0", "+2", "2"]
    assert "No release has been sent by email yet." in html
    # The period form works without script; 30 days unless another is chosen.
    assert re.search(r'<option value="30"\s+selected>', html)
    assert 'data-source="/admin/charts/data.json?days=30"' in html
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert "/static/vendor/chartjs/chart.umd.min.js" in scripts
    assert "/static/charts.js" in scripts
    for src in scripts:
        assert src.startswith("/static/"), src  # no CDN
        assert desk.get(src).status_code == 200


def test_the_data_holds_the_same_numbers_per_day(app: Flask, desk: FlaskClient) -> None:
    join_and_leave(app, ["a@mail.example", "b@mail.example"], ["a@mail.example"])
    answer = desk.get("/admin/charts/data.json?days=90&lang=en")
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    data = answer.get_json()
    series = data["subscribers"]
    assert data["days"] == 90
    assert len(series["dates"]) == len(series["labels"]) == len(series["total"]) == 90
    today = utcnow().astimezone(app.extensions["pressroom.settings"].zone).date()
    assert series["dates"][-1] == today.isoformat()
    assert series["dates"][0] == (today - timedelta(days=89)).isoformat()
    assert (series["confirmed"][-1], series["unsubscribed"][-1], series["net"][-1]) == (2, 1, 1)
    assert series["left"][-1] == 1
    assert series["total"][-1] == series["current"] == 1
    assert series["total"][-2] == 0
    assert data["releases"] == []
    assert data["text"]["unsubscribes"] == "Unsubscribes"


@pytest.mark.parametrize("days", ["7", "abc", "-1"])
def test_other_periods_are_refused_clearly(desk: FlaskClient, days: str) -> None:
    assert desk.get(f"/admin/charts?days={days}").status_code == 422
    assert desk.get(f"/admin/charts/data.json?days={days}").status_code == 422


def test_a_one_click_unsubscribe_from_a_release_email_counts_for_that_release_once(
    app: Flask, desk: FlaskClient, sink: MailSink, worker: None
) -> None:
    readers = ["stays@mail.example", "leaves@mail.example", "reads@mail.example"]
    add_subscribers(app, readers)
    token = api_token(app, EMAIL)
    release = publish(desk, token, title="Pressemøte om kulturprogrammet")
    wait_until(lambda: release_state(desk, token, release["id"])["status"] == "sent")
    mails = {m.recipients[0]: m.message for m in sink.handler.wait_for(3)}
    url = str(mails["leaves@mail.example"]["List-Unsubscribe"]).strip("<>")

    # What a mail provider does (RFC 8058), twice, as they sometimes do: counted once.
    one_click = app.test_client(use_cookies=False)
    for _ in range(2):
        answer = one_click.post(
            url.removeprefix("http://press.example"),
            data="List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )
        assert answer.status_code == 200
    # The same reader's link in the page's button, and another reader's preferences-page
    # unsubscribe (no release named), change nothing for this release.
    desk.post(url.removeprefix("http://press.example"))
    join_and_leave(app, [], ["stays@mail.example"])

    data = desk.get("/admin/charts/data.json").get_json()
    (shown,) = data["releases"]
    assert shown["id"] == release["id"]
    assert shown["title"] == "Pressemøte om kulturprogrammet"
    assert (shown["recipients"], shown["delivered"], shown["failed"]) == (3, 3, 0)
    assert shown["unsubscribed"] == 1
    assert shown["url"] == f"/admin/releases/{release['id']}"
    assert data["subscribers"]["unsubscribed"][-1] == 2
    assert data["subscribers"]["current"] == 1

    page = desk.get("/admin/charts?lang=en").text
    # Recipients, delivered, failed, bounced, complaints, unsubscribes (and rate); the day
    # it was sent is under the title.
    row = cells(page, "Pressemøte om kulturprogrammet")
    assert row == ["3", "3", "0", "0", "0", "1 (33.3%)"]


def test_one_click_posts_at_the_same_moment_count_once(app: Flask, desk: FlaskClient) -> None:
    """Mail providers retry, and may post the same link several times at once."""
    from tests.web.helpers import THREADS, at_once

    add_subscribers(app, ["clicker@mail.example"])
    signer = app.extensions["pressroom.signer"]
    with app.app_context(), get_database().session_scope() as session:
        row = subscriptions.find_by_email(session, "clicker@mail.example")
        assert row is not None
        token = signer.dumps(Purpose.UNSUBSCRIBE, {"u": row.uid})

    def one_click(_: int) -> int:
        return (
            app.test_client(use_cookies=False)
            .post(
                f"/unsubscribe/{token}",
                data="List-Unsubscribe=One-Click",
                content_type="application/x-www-form-urlencoded",
            )
            .status_code
        )

    assert at_once(one_click) == [200] * THREADS
    series = desk.get("/admin/charts/data.json").get_json()["subscribers"]
    assert series["unsubscribed"][-1] == 1
    assert series["current"] == 0
