"""Press staff in Chromium: write a release, preview it, test it, publish it, watch it go out."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from playwright.sync_api import Page, expect

from tests.browser.conftest import Credentials, Inbox
from tests.helpers import settings_changed
from tests.pipeline.helpers import add_subscribers, api_token, publish

pytestmark = pytest.mark.timeout(300)

GAGARIN = "60 år siden Jurij Gagarin erobret verdensrommet"
GAGARIN_EN = "60 years since Yuri Gagarin conquered space"
NORWEGIAN_READERS = [f"leser{n}@mail.example" for n in range(45)]
ENGLISH_READERS = [f"reader{n}@mail.example" for n in range(15)]
SEND_RATE = 20.0  # messages a second: slow enough to watch the bar move


@pytest.fixture
def slow_sending(app: Flask) -> Iterator[None]:
    """The worker reads the settings at each batch: a send rate makes this send take seconds."""
    with settings_changed(app, send_rate=SEND_RATE):
        yield


def test_a_publisher_writes_previews_tests_publishes_and_watches_it_go_out(
    app: Flask,
    desk_page: Page,
    publisher: Credentials,
    inbox: Inbox,
    slow_sending: None,
    screenshot: Callable[..., None],
) -> None:
    add_subscribers(app, NORWEGIAN_READERS)
    add_subscribers(app, ENGLISH_READERS, language="en")
    page = desk_page

    page.get_by_role("navigation", name="Desk").get_by_role("link", name="New release").click()
    page.get_by_label("Title", exact=True).fill(GAGARIN)
    page.get_by_label("Summary", exact=True).fill(
        "Den 12. april 1961 ble Gagarin det første mennesket i verdensrommet."
    )
    page.get_by_label("Text (Markdown)", exact=True).fill(
        "Vostok 1 gikk **én gang** rundt jorden.\n\n- 108 minutter\n- 327 km over bakken"
    )
    # The preview is the email itself, redrawn as the text is typed.
    html_preview = page.frame_locator("iframe[name=preview-html]")
    text_preview = page.frame_locator("iframe[name=preview-text]")
    expect(html_preview.get_by_role("heading", name=GAGARIN)).to_be_visible()
    expect(html_preview.locator("strong")).to_have_text("én gang")
    # The text part as a person would type it: no Markdown marks (issue 10, item 2).
    expect(text_preview.locator("pre")).to_contain_text("Vostok 1 gikk én gang rundt jorden.")
    expect(text_preview.locator("pre")).to_contain_text("- 108 minutter\n- 327 km over bakken")
    expect(text_preview.locator("dl")).to_contain_text(f"Subject{GAGARIN}")

    page.get_by_text("Translation: English").click()
    page.get_by_label("Title (en)").fill(GAGARIN_EN)
    page.get_by_label("Text (Markdown) (en)").fill("Vostok 1 went round the Earth **once**.")
    page.get_by_label("Preview and test in").select_option("en")
    expect(html_preview.get_by_role("heading", name=GAGARIN_EN)).to_be_visible()
    expect(text_preview.locator("dl")).to_contain_text(f"Subject{GAGARIN_EN}")
    screenshot(page, "desk-editor")

    page.get_by_role("button", name="Save and send a test email").click()
    expect(page.get_by_role("status").first).to_contain_text(
        f"A test email is on its way to {publisher.email}"
    )
    test_copy = inbox.wait_for(publisher.email, "[TEST]")
    assert test_copy["Subject"] == f"[TEST] {GAGARIN_EN}"
    assert test_copy["X-Pressroom-Test"] == "yes"
    assert "Vostok 1 went round the Earth" in inbox.text(test_copy)

    page.get_by_role("button", name="Save and publish…").click()
    expect(page.get_by_text("It will be emailed to 60 readers.")).to_be_visible()
    expect(page.get_by_text("45 in Norwegian")).to_be_visible()
    expect(page.get_by_text("15 in English")).to_be_visible()
    screenshot(page, "desk-publish")
    page.get_by_role("button", name="Publish and email 60 readers").click()

    expect(page).to_have_url(re.compile(r"/admin/releases/\d+/send$"))
    page.evaluate("window.sameSendView = true")  # gone if the page were reloaded
    bar = page.locator("progress#send-progress")
    started_at = float(bar.get_attribute("value") or 0)
    assert started_at < 100, "the send was over before the view could show it"
    expect(page.locator("#stat-sent")).not_to_have_text("0")
    screenshot(page, "desk-send")
    expect(bar).to_have_attribute("value", re.compile(r"^100(\.0)?$"), timeout=60_000)
    expect(page.locator("#send-state")).to_have_text("sent")
    expect(page.locator("#stat-sent")).to_have_text("60")
    expect(page.locator("#stat-failed")).to_have_text("0")
    expect(page.locator("#send-sent")).to_have_text("60")
    expect(page.locator("#send-total")).to_have_text("60")
    assert page.evaluate("window.sameSendView") is True
    expect(page.get_by_role("button", name="Pause")).to_be_hidden()

    # What the desk counts is what the readers got: each of them, once, in their language.
    received = Counter(
        address
        for mail in inbox.sink.handler.received
        for address in mail.recipients
        if address != publisher.email
    )
    assert received == Counter(NORWEGIAN_READERS + ENGLISH_READERS)
    english = inbox.wait_for(ENGLISH_READERS[0], GAGARIN_EN)
    assert english["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    page.get_by_role("navigation", name="Desk").get_by_role("link", name="Releases").click()
    row = page.get_by_role("row").filter(has_text=GAGARIN)
    expect(row).to_contain_text("60 / 60")
    screenshot(page, "desk-releases")


def test_a_publisher_pauses_and_resumes_a_send_and_each_reader_gets_it_once(
    app: Flask, desk_page: Page, inbox: Inbox, slow_sending: None
) -> None:
    readers = [f"patient{n}@mail.example" for n in range(120)]
    add_subscribers(app, readers)
    page = desk_page
    page.goto("/admin/releases/new")
    page.get_by_label("Title", exact=True).fill("Pressemøte om kulturprogrammet")
    page.get_by_role("button", name="Save and publish…").click()
    page.get_by_role("button", name="Publish and email 120 readers").click()
    expect(page).to_have_url(re.compile(r"/admin/releases/\d+/send$"))

    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#send-state")).to_have_text("paused")
    expect(page.get_by_role("button", name="Pause")).to_be_hidden()
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    # The batch records what it had sent when it saw the pause a moment later; from then on,
    # paused means paused: the count stays where it is.
    held = settled(page, "#stat-sent")
    assert held < len(readers), "the send was over before it could be paused"
    page.wait_for_timeout(2_000)
    expect(page.locator("#stat-sent")).to_have_text(str(held))

    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#send-state")).to_have_text("sent", timeout=60_000)
    expect(page.locator("#stat-sent")).to_have_text(str(len(readers)))
    received = Counter(a for mail in inbox.sink.handler.received for a in mail.recipients)
    assert received == Counter(readers)


def settled(page: Page, selector: str, *, polls: int = 30) -> int:
    """The number the live view shows once two looks a second apart agree."""
    previous = None
    for _ in range(polls):
        page.wait_for_timeout(1_000)
        shown = page.locator(selector).inner_text()
        if shown == previous:
            return int(shown)
        previous = shown
    raise AssertionError(f"{selector} never settled: last {previous}")


def test_a_second_release_with_a_published_title_previews_its_own_link_and_asks_first(
    app: Flask, desk_page: Page, publisher: Credentials
) -> None:
    """Issue 10, item 3: the unsaved preview's "read it in your browser" pointed at the
    published release with the title's slug, and the desk saved and published a second
    release of that title without a word."""
    first = publish(app.test_client(), api_token(app, publisher.email), email=False)
    page = desk_page
    page.goto("/admin/releases/new")
    page.get_by_label("Title", exact=True).fill(GAGARIN)
    html_preview = page.frame_locator("iframe[name=preview-html]")
    expect(html_preview.get_by_role("heading", name=GAGARIN)).to_be_visible()
    browser_link = html_preview.get_by_role("link", name="Les den i nettleseren")
    expect(browser_link).to_have_attribute("href", re.compile(rf"/releases/{first['slug']}-2\?"))

    page.get_by_role("button", name="Save", exact=True).click()
    warning = page.get_by_role("alert")
    expect(warning).to_contain_text("a published release has this title")
    expect(warning.get_by_role("link", name=GAGARIN)).to_have_attribute(
        "href", f"/releases/{first['slug']}"
    )
    expect(page.get_by_label("Title", exact=True)).to_have_value(GAGARIN)
    page.get_by_label("Save it with this title all the same").check()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page).to_have_url(re.compile(r"/admin/releases/\d+$"))
    expect(page.get_by_role("status").first).to_contain_text("Saved.")

    page.get_by_role("button", name="Save and publish…").click()
    expect(page.get_by_role("alert")).to_contain_text("A published release has the same title")
    page.locator("#publish-now").click()  # a warning, not a refusal
    expect(page.get_by_role("status").first).to_contain_text("Published")
