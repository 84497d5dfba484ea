"""Every desk page in Chromium: named controls, readable contrast, no sideways scroll on a
phone, in both languages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from playwright.sync_api import Page

from service import background_import
from service.app_state import get_database
from service.db import utcnow
from service.domain import publishers, releases, webhook_endpoints, webhook_outbox
from service.domain.imports import ImportOptions
from service.domain.webhook_endpoints import EventType
from service.models import Release
from service.redis_clients import app_redis
from tests.browser.conftest import PHONE, Credentials, cut_off, phone_fits
from tests.browser.helpers import seed_history
from tests.browser.page_checks import faces, low_contrast_text, unlabelled_controls
from tests.helpers import settings_changed
from tests.pipeline.helpers import add_subscribers

pytestmark = pytest.mark.timeout(300)

TABLET = {"width": 768, "height": 1000}


def a_release_in_sending(app: Flask, *, published: bool = True) -> int:
    """A send under way whose tasks have not run: the send view with its buttons (or, not
    `published`, a draft that asks before it is published)."""
    now = utcnow()
    with app.app_context(), get_database().session_scope() as session:
        draft = releases.parse_release(
            {"title": "Pressemøte om kulturprogrammet", "summary": "Kort", "language": "nb"},
            now=now,
        )
        release = releases.create_release(session, draft, publisher_id=None, now=now)
        if published:
            releases.publish(session, release.id, now=now)
        return release.id


# Long words and long addresses, as real lists hold them.
READERS = [
    "kari.nordmann.pressekontakt@kommunikasjonsavdelingen.example",
    "ola@mail.example",
]
IMPORT_FILE = (
    "email,name,language,topics\n"
    "kari.nordmann.pressekontakt@kommunikasjonsavdelingen.example,Kari,nb,\n"
    "ikke-en-adresse-men-en-veldig-lang-tekst-uten-mellomrom,Nobody,nb,\n"
    "ola@mail.example,Ola,xx,\n"
)


def an_import_report(app: Flask, publisher: Credentials) -> str:
    """A finished import with lines not imported: the report's table. Run here, in the test's
    process, by the same code the worker runs."""
    with app.app_context():
        with get_database().session_scope() as session:
            found = publishers.find_publisher(session, publisher.email)
            assert found is not None
            publisher_id = found.id
        options = ImportOptions(
            consent_text_version="v1", confirmed=True, consent_note="", offered_topics=()
        )
        job_id = background_import.create(
            app_redis(), IMPORT_FILE.encode(), options, publisher_id=publisher_id
        )
        assert background_import.run(app_redis(), job_id) == "done"
    return f"/admin/subscribers/import/{job_id}"


def a_failing_webhook(app: Flask) -> str:
    """An endpoint with a long address and an event it failed to take: the webhooks page."""
    now, release_id = utcnow(), a_release_in_sending(app)
    with app.app_context(), get_database().session_scope() as session:
        url = "https://integrasjoner.kommunikasjonsavdelingen.example/pressroom/webhooks?token=abc"
        webhook_endpoints.add(session, url, ["release.paused"], include_address=True, now=now)
        release = session.get(Release, release_id)
        assert release is not None
        webhook_outbox.release_changed(session, EventType.RELEASE_PAUSED, release, now=now)
        (row_id,) = session.info.pop(webhook_outbox.TO_RING)
        attempt = webhook_outbox.claim(session, row_id, now=now)
        assert attempt is not None
        webhook_outbox.settle(
            session,
            attempt,
            error="no answer: [Errno 111] Connection refused",
            now=now + timedelta(days=1),
            retry_seconds=86400,
            backoff_seconds=10,
        )
    return "/admin/webhooks"


@pytest.mark.parametrize("language", ["nb", "en"])
def test_desk_pages_are_labelled_readable_and_fit_a_phone(
    app: Flask, desk_page: Page, publisher: Credentials, language: str
) -> None:
    add_subscribers(app, READERS, topics=("kultur", "samferdsel"))
    seed_history(app)  # the charts' tables, and sent releases in the list
    release_id = a_release_in_sending(app)
    pages = [
        "/admin",
        "/admin/releases/new",
        f"/admin/releases/{release_id}",
        f"/admin/releases/{release_id}/send",
        f"/admin/releases/{a_release_in_sending(app, published=False)}/publish",
        "/admin/subscribers",
        "/admin/subscribers/import",
        an_import_report(app, publisher),
        "/admin/charts",
        a_failing_webhook(app),
    ]
    page = desk_page
    unlabelled, pale, too_wide, clipped = {}, {}, [], {}
    for path in pages:
        page.set_viewport_size({"width": 1100, "height": 800})
        page.goto(f"{path}?lang={language}")
        page.wait_for_load_state("load")
        if found := unlabelled_controls(page):
            unlabelled[path] = found
        if found := low_contrast_text(page):
            pale[path] = found
        if found := cut_off(page):
            clipped[f"{path} at 1100 px"] = found
        page.set_viewport_size(TABLET)
        page.goto(f"{path}?lang={language}")
        if found := cut_off(page):
            clipped[f"{path} at {TABLET['width']} px"] = found
        page.set_viewport_size(PHONE)
        page.goto(f"{path}?lang={language}")
        if not phone_fits(page):
            too_wide.append(path)
        if found := cut_off(page):
            clipped[path] = found
    assert unlabelled == {}
    assert pale == {}
    assert clipped == {}  # every table's right edge within the screen, a phone's too
    assert too_wide == []


CONTROLS = (
    "#release-form input:not([type=checkbox]):not([type=radio]), #release-form select, "
    "#release-form textarea, #release-form button"
)


@pytest.mark.parametrize("topics", [(), ("kultur", "sport")])
def test_the_editors_controls_and_hints_share_one_type(
    app: Flask, desk_page: Page, topics: tuple[str, ...]
) -> None:
    # Offered topics are checkboxes; without them, topics are a text field.
    with settings_changed(app, topics=topics):
        desk_page.goto("/admin/releases/new")
        desk_page.locator("#translation summary").click()  # its fields are controls too
        controls = faces(desk_page, CONTROLS)
        hints = faces(desk_page, "#release-form .hint")
    assert len(controls) == 1, (
        controls
    )  # title, summary, text, selects, buttons: one face, one size
    assert len(hints) == 1, hints  # every hint, the topics' one included
    ((control_family, _),) = controls
    ((hint_family, _),) = hints
    assert control_family == hint_family, (controls, hints)


@pytest.mark.browser_context_args(viewport=PHONE)
def test_a_table_stacked_on_a_phone_is_still_a_table_to_a_screen_reader(
    app: Flask, desk_page: Page, screenshot: Callable[..., None]
) -> None:
    add_subscribers(app, READERS, topics=("kultur", "samferdsel"))
    desk_page.goto("/admin/subscribers?lang=en")
    assert cut_off(desk_page) == [] and phone_fits(desk_page)
    # What Chromium tells a screen reader (its accessibility tree, not Playwright's reckoning).
    tree = desk_page.context.new_cdp_session(desk_page).send("Accessibility.getFullAXTree")
    roles: dict[str, list[str]] = {}
    for node in tree["nodes"]:
        if not node.get("ignored"):
            role = node.get("role", {}).get("value", "")
            roles.setdefault(role, []).append(node.get("name", {}).get("value", ""))
    assert len(roles.get("table", [])) == 1
    assert len(roles.get("row", [])) == 1 + len(READERS)
    assert "Status" in roles.get("columnheader", [])
    # Each cell is named by its content alone: the label drawn before it is for the eye.
    assert READERS[0] in roles.get("cell", []) and "Norwegian" in roles.get("cell", [])
    screenshot(desk_page, "desk-subscribers-phone")
