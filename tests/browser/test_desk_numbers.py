"""Numbers the desk's scripts write are in the page's language, as the server's are: the send
view's live numbers in bokmål read "37,5" and "1 200", never JavaScript's own "37.5"."""

from __future__ import annotations

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from tests.web.helpers import NBSP, a_send_under_way

pytestmark = pytest.mark.timeout(300)

LIVE = ["send-percent", "send-sent", "send-total", "stat-sent", "stat-pending", "stat-rate"]


def blank_the_live_numbers(page: Page) -> None:
    """Empties what the script fills in, so that what shows next is the script's own writing."""
    page.evaluate(
        "ids => ids.forEach(id => { document.getElementById(id).textContent = '?'; })", LIVE
    )


def test_the_send_views_script_writes_norwegian_numbers(app: Flask, desk_page: Page) -> None:
    # Paused: the script shows the send's own rate, not one measured between its polls.
    release_id = a_send_under_way(app, paused=True)
    page = desk_page
    page.goto(f"/admin/releases/{release_id}/send?lang=nb")
    expect(page.locator("html")).to_have_attribute("lang", "nb")
    blank_the_live_numbers(page)
    expect(page.locator("#send-percent")).to_have_text(f"37,5{NBSP}%")
    expect(page.locator("#stat-rate")).to_have_text("37,5")
    expect(page.locator("#send-sent")).to_have_text("450")
    expect(page.locator("#send-total")).to_have_text(f"1{NBSP}200")
    expect(page.locator("#stat-pending")).to_have_text("750")
    expect(page.locator("#send-progress")).to_have_text(f"37,5{NBSP}%")

    page.goto(f"/admin/releases/{release_id}/send?lang=en")
    blank_the_live_numbers(page)
    expect(page.locator("#stat-rate")).to_have_text("37.5")
    expect(page.locator("#send-total")).to_have_text("1,200")
    expect(page.locator("#send-percent")).to_have_text("37.5%")
