"""Readers in Chromium: subscribe and confirm, one-click unsubscribe, and the pages they meet
when something is wrong. The app runs on a real HTTP server with a real worker and SMTP sink."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import Page, Playwright, Response, expect
from sqlalchemy import select

from service.app_state import get_database
from service.domain import subscriptions
from service.domain.tokens import CONFIRM_TTL, TokenSigner
from service.models import Subscriber, SubscriberStatus
from tests.browser.conftest import Credentials, Inbox, LiveServer, sign_in
from tests.pipeline.helpers import add_subscribers, api_token, publish, release_state, wait_until

# Mail goes through the real worker: on a busy machine a send can take a while.
pytestmark = pytest.mark.timeout(300)

READER = "kari.nordmann@mail.example"


def subscriber(app: Flask, email: str) -> Subscriber:
    with app.app_context(), get_database().session_scope() as session:
        row = session.scalar(select(Subscriber).where(Subscriber.email == email))
        assert row is not None, f"no subscriber {email}"
        session.expunge(row)
        return row


def wait_until_sent(client: FlaskClient, token: str, release_id: object) -> dict[str, object]:
    def sent() -> bool:
        return release_state(client, token, release_id)["delivery"]["state"] == "sent"  # type: ignore[index]

    wait_until(sent, timeout=90, what=lambda: str(release_state(client, token, release_id)))
    return release_state(client, token, release_id)


@pytest.mark.browser_context_args(locale="nb-NO")
def test_a_reader_subscribes_in_norwegian_confirms_and_changes_language(
    app: Flask, page: Page, inbox: Inbox, screenshot: Callable[..., None]
) -> None:
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "nb")
    expect(page.get_by_role("heading", name="Presserom", level=1)).to_be_visible()
    expect(page.locator("#subscribe")).to_contain_text("Du kan melde deg av når som helst.")

    page.get_by_label("E-postadresse").fill(READER)
    page.get_by_role("button", name="Abonner").click()
    expect(page.get_by_role("heading", name="Sjekk innboksen din")).to_be_visible()

    confirmation = inbox.wait_for(READER, "Bekreft abonnementet")
    confirm_url = inbox.link(confirmation, "confirm")
    assert confirm_url.removeprefix(inbox.server.url) in inbox.html(confirmation)

    page.goto(confirm_url)
    expect(page.get_by_role("heading", name="Bekreft abonnementet ditt")).to_be_visible()
    expect(page.get_by_text(READER)).to_be_visible()
    screenshot(page, "confirm")
    assert subscriber(app, READER).status is SubscriberStatus.PENDING  # opening changes nothing

    page.get_by_role("button", name="Bekreft abonnementet").click()
    expect(page.get_by_role("heading", name="Abonnementet er bekreftet")).to_be_visible()
    confirmed = subscriber(app, READER)
    assert (confirmed.status, confirmed.language) == (SubscriberStatus.CONFIRMED, "nb")
    welcome = inbox.wait_for(READER, "Velkommen")
    assert "Unsubscribe=One-Click" in str(welcome["List-Unsubscribe-Post"])

    page.get_by_role("link", name="Velg språk og emner").click()
    expect(page.get_by_role("heading", name="Abonnementet ditt")).to_be_visible()
    expect(page.get_by_label("Norsk bokmål")).to_be_checked()
    screenshot(page, "preferences")
    page.get_by_label("English").check()
    page.get_by_role("button", name="Lagre").click()
    expect(page.get_by_role("status")).to_have_text("Valgene dine er lagret.")
    expect(page.get_by_label("English")).to_be_checked()
    assert subscriber(app, READER).language == "en"

    # The welcome mail's own link leads to the same, saved, choice.
    page.goto(inbox.link(welcome, "preferences"))
    expect(page.get_by_label("English")).to_be_checked()


def test_one_click_unsubscribe_stops_the_next_release(
    app: Flask,
    client: FlaskClient,
    page: Page,
    playwright: Playwright,
    inbox: Inbox,
    live_server: LiveServer,
) -> None:
    gmail_reader, page_reader, stays = (
        "one.click@mail.example",
        "by.page@mail.example",
        "stays@mail.example",
    )
    add_subscribers(app, [gmail_reader, page_reader, stays])
    token = api_token(app)

    first = publish(client, token, title="Første melding")
    wait_until_sent(client, token, first["id"])
    to_gmail_reader = inbox.wait_for(gmail_reader, "Første melding")
    to_page_reader = inbox.wait_for(page_reader, "Første melding")
    assert to_gmail_reader["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # What Gmail does (RFC 8058): a bare POST to the List-Unsubscribe URL, no cookie, no form.
    header_url = str(to_gmail_reader["List-Unsubscribe"]).strip().strip("<>")
    mail_provider = playwright.request.new_context()
    try:
        answer = mail_provider.post(
            live_server.from_mail(header_url),
            data="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            max_redirects=0,
        )
        assert answer.status == 200, answer.text()
    finally:
        mail_provider.dispose()
    assert subscriber(app, gmail_reader).status is SubscriberStatus.UNSUBSCRIBED

    # The other reader follows the visible link in the mail and presses the button.
    page.goto(inbox.link(to_page_reader, "unsubscribe"))
    expect(page.get_by_role("heading", name="Unsubscribe")).to_be_visible()
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    assert subscriber(app, page_reader).status is SubscriberStatus.UNSUBSCRIBED

    second = publish(client, token, title="Andre melding")
    state = wait_until_sent(client, token, second["id"])
    inbox.wait_for(stays, "Andre melding")
    assert state["delivery"]["total"] == 1  # type: ignore[index]
    assert inbox.messages_to(gmail_reader, "Andre melding") == []
    assert inbox.messages_to(page_reader, "Andre melding") == []


def confirm_link(app: Flask, live_server: LiveServer, email: str, *, age: float = 0) -> str:
    """The link of a confirmation mail sent `age` seconds ago."""
    settings = app.extensions["pressroom.settings"]
    then = time.time() - age
    signer = TokenSigner(settings.secret_key, clock=lambda: then)
    token = subscriptions.confirm_token(signer, subscriber(app, email))
    return f"{live_server.url}/confirm/{token}"


def assert_clear_page(page: Page, heading: str, message: str) -> None:
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    expect(page.locator("main")).to_contain_text(message)
    expect(page.locator("body")).not_to_contain_text("Traceback")
    expect(page.get_by_role("link", name="Back to the press room")).to_be_visible()


def test_wrong_password_expired_and_tampered_links_each_show_a_clear_page(
    app: Flask, page: Page, live_server: LiveServer, publisher: Credentials
) -> None:
    def login_post(response: Response) -> bool:
        return response.request.method == "POST" and response.url.endswith("/admin/login")

    with page.expect_response(login_post) as login:
        sign_in(page, publisher.email, "not the password")
    assert login.value.status == 401
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to the desk")
    expect(page.get_by_role("alert")).to_have_text("Wrong email address or password.")
    expect(page.get_by_label("Password")).to_have_value("")

    add_subscribers(app, [READER], status=SubscriberStatus.PENDING)
    week_old = confirm_link(app, live_server, READER, age=CONFIRM_TTL.total_seconds() + 60)
    answer = page.goto(week_old)
    assert answer is not None and answer.status == 410
    assert_clear_page(page, "Something is not right", "This link has expired.")
    expect(page.get_by_role("link", name="subscribe again")).to_have_attribute(
        "href", re.compile(r"^/(\?.*)?#subscribe$")
    )

    fresh = confirm_link(app, live_server, READER)
    tampered = fresh[:-3] + ("AAA" if not fresh.endswith("AAA") else "BBB")
    answer = page.goto(tampered)
    assert answer is not None and answer.status == 400
    assert_clear_page(page, "Something is not right", "This link is not valid.")

    answer = page.goto(fresh)  # the untouched link still works: it was the tampering
    assert answer is not None and answer.status == 200
    expect(page.get_by_role("button", name="Confirm subscription")).to_be_visible()
    assert subscriber(app, READER).status is SubscriberStatus.PENDING
