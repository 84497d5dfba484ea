"""Every desk page in Chromium: named controls, readable contrast, no sideways scroll on a
phone, in both languages."""

from __future__ import annotations

import pytest
from flask import Flask
from playwright.sync_api import Page

from service.db import get_database, utcnow
from service.domain import releases
from tests.browser.conftest import PHONE, phone_fits
from tests.browser.page_checks import low_contrast_text, unlabelled_controls
from tests.pipeline.helpers import add_subscribers

pytestmark = pytest.mark.timeout(300)


def a_release_in_sending(app: Flask) -> int:
    """A send under way whose tasks have not run: the send view with its buttons."""
    now = utcnow()
    with app.app_context(), get_database().session_scope() as session:
        draft = releases.parse_release(
            {"title": "Pressemøte om kulturprogrammet", "summary": "Kort", "language": "nb"},
            now=now,
        )
        release = releases.create_release(session, draft, publisher_id=None, now=now)
        releases.publish(session, release.id, now=now)
        return release.id


@pytest.mark.parametrize("language", ["nb", "en"])
def test_desk_pages_are_labelled_readable_and_fit_a_phone(
    app: Flask, desk_page: Page, language: str
) -> None:
    add_subscribers(app, ["kari@mail.example", "ola@mail.example"])
    release_id = a_release_in_sending(app)
    pages = [
        "/admin",
        "/admin/releases/new",
        f"/admin/releases/{release_id}",
        f"/admin/releases/{release_id}/send",
        "/admin/subscribers",
        "/admin/subscribers/import",
        "/admin/charts",
    ]
    page = desk_page
    unlabelled, pale, too_wide = {}, {}, []
    for path in pages:
        page.set_viewport_size({"width": 1100, "height": 800})
        page.goto(f"{path}?lang={language}")
        page.wait_for_load_state("load")
        if found := unlabelled_controls(page):
            unlabelled[path] = found
        if found := low_contrast_text(page):
            pale[path] = found
        page.set_viewport_size(PHONE)
        page.goto(f"{path}?lang={language}")
        if not phone_fits(page):
            too_wide.append(path)
    assert unlabelled == {}
    assert pale == {}
    assert too_wide == []


FONTS = """selector => [...document.querySelectorAll(selector)]
  .filter(el => el.type !== 'hidden' && el.getClientRects().length)
  .map(el => { const s = getComputedStyle(el);
               return {what: el.tagName.toLowerCase() + (el.id ? '#' + el.id : '.' + el.className),
                       family: s.fontFamily, size: s.fontSize}; })"""
CONTROLS = (
    "#release-form input:not([type=checkbox]):not([type=radio]), #release-form select, "
    "#release-form textarea, #release-form button"
)


def faces(page: Page, selector: str) -> dict[tuple[str, str], list[str]]:
    """Which elements matching `selector` wear which (font-family, font-size)."""
    found: dict[tuple[str, str], list[str]] = {}
    for element in page.evaluate(FONTS, selector):
        found.setdefault((element["family"], element["size"]), []).append(element["what"])
    return found


@pytest.mark.parametrize("topics", [(), ("kultur", "sport")])
def test_the_editors_controls_and_hints_share_one_type(
    app: Flask, desk_page: Page, topics: tuple[str, ...]
) -> None:
    settings = app.extensions["pressroom.settings"]
    # Offered topics are checkboxes; without them, topics are a text field.
    app.extensions["pressroom.settings"] = settings.replace(topics=topics)
    try:
        desk_page.goto("/admin/releases/new")
        desk_page.locator("#translation summary").click()  # its fields are controls too
        controls = faces(desk_page, CONTROLS)
        hints = faces(desk_page, "#release-form .hint")
    finally:
        app.extensions["pressroom.settings"] = settings
    assert len(controls) == 1, (
        controls
    )  # title, summary, text, selects, buttons: one face, one size
    assert len(hints) == 1, hints  # every hint, the topics' one included
    ((control_family, _),) = controls
    ((hint_family, _),) = hints
    assert control_family == hint_family, (controls, hints)
