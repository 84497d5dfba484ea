"""Press staff manage the list in Chromium: import a CSV file, read the report, search, erase.

The import runs in the real worker; its page reloads itself until the report is there."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Page, expect
from sqlalchemy import select

from service.app_state import get_database
from service.models import Subscriber, SubscriberStatus
from tests.browser.conftest import PHONE, Inbox

pytestmark = pytest.mark.timeout(300)

CSV = (
    "email,name,language\n"
    "kari@mail.example,Kari Nordmann,nb\n"
    "ola@mail.example,Ola Nordmann,nb\n"
    "john@mail.example,John Smith,en\n"
    "not an address,Nobody,nb\n"
)


def statuses(app: Flask) -> dict[str, SubscriberStatus]:
    with app.app_context(), get_database().session_scope() as session:
        return {s.email: s.status for s in session.scalars(select(Subscriber))}


def test_a_publisher_imports_searches_and_erases(
    app: Flask, desk_page: Page, tmp_path: Path, screenshot: Callable[..., None], worker: None
) -> None:
    page = desk_page
    upload = tmp_path / "readers.csv"
    upload.write_text(CSV, encoding="utf-8")

    page.get_by_role("navigation", name="Desk").get_by_role("link", name="Subscribers").click()
    page.get_by_role("link", name="Import CSV").click()
    page.get_by_label("CSV file").set_input_files(upload)
    page.get_by_label("These readers have already confirmed their subscription").check()
    page.get_by_label("Consent note").fill("Påmeldingsliste, bokmessen 2026")
    page.get_by_role("button", name="Import", exact=True).click()

    # The job's own page: progress while the worker imports, then (reloaded) the report.
    expect(page).to_have_url(re.compile(r"/admin/subscribers/import/[A-Za-z0-9_-]{32,}$"))
    expect(page.get_by_role("heading", name="Import report")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("3 subscribers imported.")
    notes = page.locator("table.import-notes")
    expect(notes).to_contain_text("not an address")
    expect(notes.locator("tbody tr")).to_have_count(1)
    expect(notes.locator("tbody tr td").first).to_have_text("5")  # the file's own line
    screenshot(page, "desk-import-report")
    assert statuses(app) == {
        "kari@mail.example": SubscriberStatus.CONFIRMED,
        "ola@mail.example": SubscriberStatus.CONFIRMED,
        "john@mail.example": SubscriberStatus.CONFIRMED,
    }

    page.get_by_role("link", name="See the subscribers").click()
    page.get_by_label("Address contains").fill("nordmann")
    page.get_by_label("Address contains").press("Enter")
    expect(page.locator("table.desk-table tbody tr")).to_have_count(0)  # names are not addresses
    page.get_by_label("Address contains").fill("@mail")
    page.get_by_role("combobox", name="Language").select_option("en")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.desk-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("john@mail.example")
    page.get_by_role("combobox", name="Language").select_option("")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(3)
    screenshot(page, "desk-subscribers")

    rows.filter(has_text="ola@mail.example").get_by_role("link", name="Erase…").click()
    page.get_by_label("Yes, erase ola@mail.example and all data about them.").check()
    page.get_by_role("button", name="Erase", exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text("The subscriber is erased.")
    expect(page.locator("table.desk-table tbody tr")).to_have_count(2)
    assert "ola@mail.example" not in statuses(app)


def test_a_publisher_invites_imported_readers_to_confirm(
    app: Flask, desk_page: Page, tmp_path: Path, inbox: Inbox
) -> None:
    """Issue 10, item 9: the import leaves readers pending; one click sends each the
    confirmation email in their language; the page then says how many and when."""
    page = desk_page
    upload = tmp_path / "readers.csv"
    upload.write_text(CSV, encoding="utf-8")
    page.goto("/admin/subscribers/import")
    page.get_by_label("CSV file").set_input_files(upload)
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("3 subscribers imported.")
    page.get_by_role(
        "link", name="Send them the confirmation email from the subscribers page."
    ).click()

    card = page.locator("section.invitations")
    expect(card).to_contain_text("3 imported readers are waiting for confirmation")
    page.set_viewport_size(PHONE)
    box = card.bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE["width"]
    page.get_by_role("button", name="Send the confirmation email to 3 readers").click()
    expect(page.get_by_role("status").first).to_contain_text(
        "The confirmation email is on its way to 3 readers."
    )
    expect(card).to_contain_text("Last invited: 3 readers on")
    expect(
        page.get_by_role("button", name=re.compile("Send the confirmation email"))
    ).to_have_count(0)

    confirm = inbox.wait_for("john@mail.example", "Confirm your subscription")
    inbox.wait_for("kari@mail.example", "Bekreft abonnementet")
    page.goto(inbox.link(confirm, "confirm"))
    page.get_by_role("button", name="Confirm subscription").click()
    expect(page.get_by_role("heading", name="Subscription confirmed")).to_be_visible()
    assert statuses(app)["john@mail.example"] is SubscriberStatus.CONFIRMED
    assert statuses(app)["ola@mail.example"] is SubscriberStatus.PENDING
