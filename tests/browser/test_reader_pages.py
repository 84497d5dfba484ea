"""The reader's pages in Chromium: the press room and a release as readers see them, on a
phone, with the keyboard alone, with labels and contrast a screen reader and weak eyes need."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Page, expect
from sqlalchemy import select

from service.app_state import get_database
from service.db import utcnow
from service.domain import subscriptions
from service.models import Subscriber, SubscriberStatus
from tests.browser.conftest import PHONE, Inbox, add_release, phone_fits
from tests.browser.page_checks import faces, focus_shown, low_contrast_text, unlabelled_controls
from tests.helpers import settings_changed
from tests.pipeline.helpers import add_subscribers

NIGHT_BUSES = "Nye nattbusslinjer i hele fylket fra 1. desember"
ANNUAL_REPORT = "Årsrapporten for 2025: flere reisende og færre forsinkelser"
LIBRARIES = "Bibliotekene holder åpent i romjulen"

NIGHT_BUSES_BODY = """\
Fylkeskommunen utvider nattbusstilbudet med **seks nye linjer**. Bussene går fredag og lørdag
fra kl. 00.30 til 04.30, med avgang hvert 30. minutt fra sentrum.

## Linjene

| Linje | Fra | Til | Første avgang | Siste avgang | Reisetid |
|---|---|---|---|---|---|
| N12 | Sentrum | Nordåsen via Universitetssykehuset | 00.30 | 04.30 | 35 min |
| N14 | Sentrum | Vestbyen via Kolsåstoppen | 00.45 | 04.15 | 40 min |

> «Nattbussene gjør det tryggere å komme seg hjem», sier samferdselsbyråd Ingrid Haugland.

Rutetabeller: https://www.example.no/kollektivtrafikk/nattbuss/rutetabeller-og-kart-for-desember-2026.pdf

```
Billettpris: vanlig billett 44 kr, honnør 22 kr, nattillegg 0 kr
```
"""


@dataclass(frozen=True)
class Archive:
    newest: str
    middle: str
    oldest: str


@pytest.fixture
def archive(app: Flask) -> Archive:
    now = utcnow()
    return Archive(
        newest=add_release(
            app,
            NIGHT_BUSES,
            summary="Seks nye nattbusslinjer kjører fredag og lørdag, med avgang hver halvtime "
            "fra sentrum.",
            body=NIGHT_BUSES_BODY,
            published_at=now - timedelta(hours=3),
        ),
        middle=add_release(
            app,
            ANNUAL_REPORT,
            summary="Antall reisende økte med 12 prosent i 2025, og andelen avganger i rute var "
            "den høyeste som er målt.",
            body="Hele rapporten ligger vedlagt.",
            published_at=now - timedelta(days=6),
            translations={
                "en": {
                    "title": "The 2025 annual report: more passengers, fewer delays",
                    "summary": "Passenger numbers grew by 12 per cent in 2025.",
                    "body": "The full report is attached.",
                }
            },
        ),
        oldest=add_release(
            app,
            LIBRARIES,
            summary="Hovedbiblioteket og fem filialer har åpent mellom jul og nyttår.",
            published_at=now - timedelta(days=21),
        ),
    )


@pytest.mark.browser_context_args(locale="nb-NO")
def test_the_press_room_lists_releases_newest_first_with_date_and_summary(
    page: Page, archive: Archive, screenshot: Callable[..., None]
) -> None:
    page.goto("/")
    items = page.locator(".release-item")
    expect(items.get_by_role("heading", level=3)).to_have_text(
        [NIGHT_BUSES, ANNUAL_REPORT, LIBRARIES]
    )
    for index in range(3):
        expect(items.nth(index).locator("time")).to_have_attribute(
            "datetime", re.compile(r"^\d{4}-\d\d-\d\dT")
        )
        expect(items.nth(index).locator("time")).to_have_text(re.compile(r"\d{4}$"))
        expect(items.nth(index).locator(".summary")).not_to_be_empty()
    expect(page.locator("#subscribe")).to_contain_text("Du kan melde deg av når som helst.")
    screenshot(page, "front-page")

    page.set_viewport_size(PHONE)
    assert phone_fits(page)
    screenshot(page, "front-page-phone")

    page.get_by_role("link", name=NIGHT_BUSES).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(NIGHT_BUSES)
    expect(page.get_by_role("table")).to_be_visible()
    assert phone_fits(page)  # a wide table scrolls inside the page, not the page


@pytest.mark.browser_context_args(locale="nb-NO")
def test_a_release_page_with_its_other_language(
    page: Page, archive: Archive, screenshot: Callable[..., None]
) -> None:
    page.goto(f"/releases/{archive.newest}")
    expect(page.get_by_role("heading", level=1)).to_have_text(NIGHT_BUSES)
    expect(page.locator("article .release-date")).to_contain_text("Publisert")
    expect(page.get_by_role("blockquote")).to_contain_text("tryggere")
    expect(page.get_by_role("heading", name="Få pressemeldingene våre på e-post")).to_be_visible()
    screenshot(page, "release-page")

    page.goto(f"/releases/{archive.middle}")
    page.get_by_role("link", name="English").last.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "The 2025 annual report: more passengers, fewer delays"
    )
    expect(page.locator("article")).to_have_attribute("lang", "en")


def reader_pages(app: Flask, archive: Archive) -> dict[str, str]:
    """Every page a reader can land on, by name, for a pending reader."""
    (uid,) = add_subscribers(app, ["reader@mail.example"], status=SubscriberStatus.PENDING)
    signer = app.extensions["pressroom.signer"]
    with app.app_context(), get_database().session_scope() as session:
        row = session.scalar(select(Subscriber).where(Subscriber.id == uid))
        assert row is not None
        confirm = subscriptions.confirm_token(signer, row)
        unsubscribe = subscriptions.unsubscribe_token(signer, row)
        preferences = subscriptions.preferences_token(signer, row)
    return {
        "front page": "/",
        "release": f"/releases/{archive.newest}",
        "release in English": f"/releases/{archive.middle}?lang=en",
        "confirm": f"/confirm/{confirm}",
        "unsubscribe": f"/unsubscribe/{unsubscribe}",
        "preferences": f"/preferences/{preferences}?saved=1",
        "spoilt link": f"/confirm/{confirm[:-4]}",
        "no such page": "/releases/no-such-release",
        "desk login": "/admin/login",
    }


@pytest.mark.parametrize("language", ["nb", "en"])
def test_every_reader_page_fits_a_phone(
    app: Flask, page: Page, archive: Archive, language: str
) -> None:
    page.set_viewport_size(PHONE)
    too_wide = []
    for name, path in reader_pages(app, archive).items():
        separator = "&" if "?" in path else "?"
        page.goto(f"{path}{separator}lang={language}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        if not phone_fits(page):
            width = page.evaluate("document.scrollingElement.scrollWidth")
            too_wide.append(f"{name}: {width}px wide on a {PHONE['width']}px screen")
    page.goto(f"/?lang={language}")
    page.get_by_label("Email address" if language == "en" else "E-postadresse").fill(
        "a.very.long.address.of.a.reader.with.a.long.name@subdomain.newsroom-example.no"
    )
    page.locator("#subscribe button[type=submit]").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    if not phone_fits(page):
        too_wide.append("check your inbox")
    assert too_wide == []


def test_a_keyboard_reader_skips_to_the_form_and_subscribes_with_enter(
    app: Flask, page: Page
) -> None:
    page.goto("/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    email = page.get_by_label("Email address")
    expect(email).to_be_focused()
    page.keyboard.type("keys@mail.example")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your inbox")
    with app.app_context(), get_database().session_scope() as session:
        reader = session.scalar(select(Subscriber).where(Subscriber.email == "keys@mail.example"))
        assert reader is not None and reader.status is SubscriberStatus.PENDING


def test_focus_is_visible_on_every_control(app: Flask, page: Page, archive: Archive) -> None:
    page.goto(reader_pages(app, archive)["preferences"])
    unseen, seen = [], 0
    for _ in range(25):
        page.keyboard.press("Tab")
        focus = focus_shown(page)
        if focus["tag"] == "BODY":
            break
        seen += 1
        if not focus["shown"]:
            unseen.append(focus)
        if pale := low_contrast_text(page, focused_only=True):
            unseen.append(pale)
    assert seen >= 8  # skip link, brand, language, radios, save, unsubscribe, data, erase ...
    assert unseen == []


def test_every_control_is_labelled_and_all_text_has_contrast(
    app: Flask, page: Page, archive: Archive
) -> None:
    unlabelled, low_contrast = {}, {}
    for name, path in reader_pages(app, archive).items():
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        if found := unlabelled_controls(page):
            unlabelled[name] = found
        if found := low_contrast_text(page):
            low_contrast[name] = found
    assert unlabelled == {}
    assert low_contrast == {}


def test_the_contrast_check_sees_pale_text(app: Flask, page: Page) -> None:
    page.goto("/")
    page.evaluate("document.querySelector('h1').style.color = '#bbbbbb'")
    assert any("Press room" in found for found in low_contrast_text(page))


LOOK = """([masthead, brand, button]) => {
  const style = selector => getComputedStyle(document.querySelector(selector));
  return {
    paper: style('body').backgroundColor, ink: style('body').color,
    text: style('body').fontFamily, heading: style('h1').fontFamily,
    masthead: style(masthead).backgroundColor,
    brand: [style(brand).color, style(brand).fontFamily, style(brand).textTransform],
    button: [style(button).backgroundColor, style(button).color, style(button).fontFamily],
  };
}"""


def test_the_emails_share_the_look_of_the_site(
    client: FlaskClient, page: Page, inbox: Inbox, screenshot: Callable[..., None]
) -> None:
    client.post("/api/v1/subscriptions", json={"email": "look@mail.example", "language": "nb"})
    confirmation = inbox.wait_for("look@mail.example")
    page.goto("/")
    site = page.evaluate(LOOK, [".masthead", ".brand", "#subscribe button"])
    page.goto("about:blank")  # the mail is no page of the site: its CSP does not apply
    page.set_viewport_size({"width": 700, "height": 600})
    page.set_content(inbox.html(confirmation))
    assert page.evaluate(LOOK, [".masthead", ".site", "a.button"]) == site
    assert phone_fits(page)  # the long confirmation link breaks instead of widening the mail
    screenshot(page, "email-confirm")
    page.set_viewport_size(PHONE)
    assert phone_fits(page)


def test_the_subscribe_forms_controls_and_hint_share_one_type(app: Flask, page: Page) -> None:
    with settings_changed(app, topics=("kultur", "sport")):
        page.goto("/")
        controls = faces(page, ".subscribe-form input:not([type=checkbox]), .subscribe-form button")
        hints = faces(page, ".subscribe-form p")  # the note under the button
    assert len(controls) == 1, controls  # the address field and its button: one face, one size
    assert len(hints) == 1, hints
    assert {family for family, _ in controls} == {family for family, _ in hints}
