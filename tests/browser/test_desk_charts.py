"""The desk's charts in Chromium: drawn by the vendored Chart.js under the site's CSP (the
harness fails the test on any violation or console error), with the numbers the tables hold."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.app_state import get_database
from service.db import utcnow
from service.domain import releases, subscriptions
from service.domain.tokens import Purpose, TokenSigner
from service.models import ConsentSource, Delivery, DeliveryStatus, Release, ReleaseStatus
from service.sending import ledger
from tests.browser.conftest import PHONE, phone_fits

TITLES = [
    "Nye nattbusslinjer i hele fylket fra 1. desember",
    "Årsrapporten for 2025: flere reisende og færre forsinkelser",
    "Bibliotekene holder åpent i romjulen",
]


def seed_history(app: Flask) -> dict[str, int]:
    """A month of readers joining and leaving, and three releases, through the domain."""
    signer: TokenSigner = app.extensions["pressroom.signer"]
    now = utcnow()
    emails: list[str] = []
    with app.app_context(), get_database().session_scope() as session:
        for day in range(28, -1, -1):
            at = now - timedelta(days=day, hours=1)
            for n in range(1 + (day * 7) % 5):
                email = f"reader{day}-{n}@mail.example"
                subscriptions.subscribe(
                    session,
                    subscriptions.Signup(
                        email=email,
                        language="nb",
                        topics=[],
                        source=ConsentSource.FORM,
                        consent_text_version="v1",
                    ),
                    now=at,
                )
                row = subscriptions.find_by_email(session, email)
                assert row is not None
                subscriptions.confirm(
                    session, signer, subscriptions.confirm_token(signer, row), now=at
                )
                emails.append(email)
            if day % 6 == 3:
                gone = subscriptions.find_by_email(session, emails[len(emails) // 3])
                assert gone is not None
                subscriptions.unsubscribe(
                    session, signer, subscriptions.unsubscribe_token(signer, gone), now=at
                )
        for n, title in enumerate(TITLES):
            at = now - timedelta(days=20 - 8 * n)
            release_id = sent_release(session, title, at, failed=n + 1)
            for email in emails[n * 5 : n * 5 + n + 1]:
                row = subscriptions.find_by_email(session, email)
                assert row is not None
                # The link of that release's email names it.
                token = signer.dumps(Purpose.UNSUBSCRIBE, {"u": row.uid, "r": release_id})
                subscriptions.unsubscribe(session, signer, token, now=at + timedelta(hours=2))
    return {"releases": len(TITLES)}


def sent_release(session: Session, title: str, at: datetime, *, failed: int) -> int:
    draft = releases.parse_release(
        {"title": title, "summary": "Sammendrag", "body": "Tekst", "language": "nb"}, now=at
    )
    release = releases.create_release(session, draft, publisher_id=None, now=at)
    releases.publish(session, release.id, now=at)
    while release.planned_at is None:
        ledger.plan_chunk(session, release, now=at)
    session.execute(
        update(Delivery)
        .where(Delivery.release_id == release.id)
        .values(status=DeliveryStatus.SENT, sent_at=at)
        .execution_options(synchronize_session=False)
    )
    failing = list(
        session.scalars(
            select(Delivery.id)
            .where(Delivery.release_id == release.id)
            .order_by(Delivery.id.desc())
            .limit(failed)
        )
    )
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_(failing))
        .values(status=DeliveryStatus.FAILED)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Release)
        .where(Release.id == release.id)
        .values(status=ReleaseStatus.SENT, send_finished_at=at)
        .execution_options(synchronize_session=False)
    )
    return release.id


def drawn(page: Page) -> dict[str, int]:
    """Each chart's canvas: how many points its first data set has, if Chart.js drew it."""
    return page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#charts canvas')].map(c => {
            const chart = window.Chart.getChart(c);
            return [c.id, chart && c.width > 0 && c.height > 0 ? chart.data.labels.length : 0];
        }))"""
    )


def test_the_charts_are_drawn_under_the_csp(
    app: Flask, desk_page: Page, screenshot: Callable[..., None]
) -> None:
    seed_history(app)
    page = desk_page
    page.emulate_media(reduced_motion="reduce")  # drawn at once: the screenshot shows it all
    page.get_by_role("link", name="Charts").click()
    expect(page.locator("#charts.charts-ready")).to_be_attached()
    assert drawn(page) == {
        "chart-subscribers": 30,
        "chart-changes": 30,
        "chart-releases": len(TITLES),
    }
    expect(page.get_by_role("img", name="Chart: subscribers over time")).to_be_visible()
    screenshot(page, "desk-charts")

    # The period form, without script of its own: a plain GET.
    page.get_by_label("Period").select_option("90")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"/admin/charts\?days=90$"))
    expect(page.locator("#charts.charts-ready")).to_be_attached()
    assert drawn(page)["chart-changes"] == 90

    # The numbers are there for a screen reader, in tables behind a disclosure.
    page.get_by_text("The numbers per release").click()
    table = page.get_by_role("table").filter(has_text="Unsubscribe rate")
    expect(table.get_by_role("row")).to_have_count(len(TITLES) + 1)
    expect(table.get_by_role("rowheader", name=TITLES[2])).to_be_visible()


@pytest.mark.browser_context_args(viewport=PHONE)
def test_the_charts_fit_a_phone_in_norwegian(
    app: Flask, desk_page: Page, screenshot: Callable[..., None]
) -> None:
    seed_history(app)
    desk_page.emulate_media(reduced_motion="reduce")
    desk_page.goto("/admin/charts?lang=nb")
    expect(desk_page.locator("#charts.charts-ready")).to_be_attached()
    assert all(drawn(desk_page).values())
    assert phone_fits(desk_page)
    screenshot(desk_page, "desk-charts-phone")


def axis_labels(page: Page, canvas: str) -> list[dict[str, object]]:
    """The y axis's ticks of a drawn chart: the value and the label Chart.js writes for it."""
    return page.evaluate(
        """id => window.Chart.getChart(document.getElementById(id)).scales.y.ticks
                 .map(t => ({value: t.value, label: String(t.label)}))""",
        canvas,
    )


@pytest.mark.parametrize(("language", "minus"), [("nb", "\u2212"), ("en", "-")])
def test_the_daily_changes_axis_writes_departures_below_zero_with_a_minus(
    app: Flask, desk_page: Page, language: str, minus: str
) -> None:
    seed_history(app)
    desk_page.goto(f"/admin/charts?lang={language}")
    expect(desk_page.locator("#charts.charts-ready")).to_be_attached()
    ticks = axis_labels(desk_page, "chart-changes")
    below = [t for t in ticks if float(t["value"]) < 0]  # type: ignore[arg-type]
    assert below, ticks  # readers left: the axis reaches below zero
    for tick in below:
        assert tick["label"] == f"{minus}{abs(int(tick['value']))}", ticks  # type: ignore[call-overload]
    assert all(
        not str(t["label"]).startswith(("-", "\u2212")) for t in ticks if float(t["value"]) >= 0
    )  # type: ignore[arg-type]
