"""The browser harness itself: what it must catch, it catches."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.browser.conftest import BrowserProblems, LiveServer


def test_a_csp_violation_is_reported(page: Page, browser_problems: BrowserProblems) -> None:
    page.goto("/")
    with page.expect_console_message(lambda message: "script-src" in message.text):
        page.evaluate(
            "() => { const s = document.createElement('script');"
            " s.textContent = 'window.ran = 1'; document.body.append(s); }"
        )
    assert page.evaluate("window.ran") is None  # the CSP held
    problems = browser_problems.take()  # taken, so that this test itself passes
    assert any("script-src" in problem for problem in problems), problems


def test_a_missing_image_is_reported(page: Page, browser_problems: BrowserProblems) -> None:
    page.goto("/")
    with page.expect_response("**/static/no-such-image.png"):
        page.evaluate(
            "() => { const i = document.createElement('img');"
            " i.src = '/static/no-such-image.png'; document.body.append(i); }"
        )
    page.evaluate("0")  # one more round trip: every event of the answer has been handled
    assert any("404" in problem for problem in browser_problems.take())


def test_an_error_page_asked_for_is_no_problem(
    page: Page, browser_problems: BrowserProblems
) -> None:
    answer = page.goto("/releases/no-such-release")
    assert answer is not None and answer.status == 404
    assert browser_problems.take() == []


def test_mail_links_lead_to_the_live_server(live_server: LiveServer) -> None:
    assert live_server.from_mail("http://press.example/confirm/abc") == (
        live_server.url + "/confirm/abc"
    )


def test_a_missing_icon_is_reported(page: Page, browser_problems: BrowserProblems) -> None:
    """The browser fetches a page's icon itself: no request event, only a console notice."""
    page.goto("/")
    with page.expect_console_message(lambda message: "404" in message.text):
        page.evaluate(
            "() => { document.querySelectorAll('link[rel~=icon]').forEach(l => l.remove());"
            " const l = document.createElement('link'); l.rel = 'icon';"
            " l.href = '/static/no-such-icon.png'; document.head.append(l); }"
        )
    assert any("no-such-icon.png" in problem for problem in browser_problems.take())
    page.evaluate("() => document.querySelector('link[href$=\"no-such-icon.png\"]').remove()")


def test_an_icon_fetched_after_the_test_is_checked_at_its_end(
    page: Page, browser_problems: BrowserProblems
) -> None:
    page.goto("/")
    page.evaluate(
        "() => { document.querySelectorAll('link[rel~=icon]').forEach(l => l.remove());"
        " const l = document.createElement('link'); l.rel = 'icon';"
        " l.href = '/static/no-such-icon.svg'; document.head.append(l); }"
    )
    browser_problems.check_icons()  # what the harness does after every test
    assert any("404 for the icon" in problem for problem in browser_problems.take())
    # Chromium may fetch the missing icon itself at any moment after it was linked: unlink it,
    # give a fetch under way time to answer, and drop what it reports (it was asked for).
    page.evaluate("() => document.querySelector('link[href$=\"no-such-icon.svg\"]').remove()")
    page.wait_for_timeout(1000)
    browser_problems.take()


def test_every_page_has_an_icon(page: Page) -> None:
    """Its <link rel=icon>, and /favicon.ico for what asks without reading the page."""
    for path in ("/", "/admin/login", "/releases/no-such-release"):
        page.goto(path)
        icons = page.evaluate("[...document.querySelectorAll('link[rel~=icon]')].map(l => l.href)")
        assert icons, path
        for url in [
            *icons,
            page.url.split("/", 3)[0] + "//" + page.url.split("/")[2] + "/favicon.ico",
        ]:
            answer = page.request.get(url)
            assert answer.ok, (url, answer.status)
            assert answer.headers["content-type"].startswith("image/"), url
