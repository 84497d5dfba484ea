"""The desk's charts in Chromium: drawn by the vendored Chart.js under the site's CSP (the
harness fails the test on any violation or console error), with the numbers the tables hold."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, phone_fits
from tests.browser.helpers import TITLES, seed_history


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
    table = page.get_by_role("table").filter(has_text="Complaints")
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
