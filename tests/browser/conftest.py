"""Browser tests: Debian's Chromium driven by pytest-playwright against the app served by a real
threaded HTTP server, with the real Celery worker, Redis and SMTP sink of tests/conftest.py.

Fixtures for a test:
  page, context           pytest-playwright's, in Chromium, English (a test marked
                          @pytest.mark.browser_context_args(locale="nb-NO") reads Norwegian);
                          page.goto("/") opens the live server. Console errors, uncaught
                          exceptions, CSP violations, failed requests and 4xx/5xx answers for
                          anything but the page itself (the browser's own favicon fetch
                          included), on any page of the context, fail the test
  browser_problems        what the browser reported so far (.take() empties it)
  live_server             LiveServer: .url, .from_mail(url) -> the same page on the live server
  inbox                   Inbox over the SMTP sink (starts the worker): wait_for(to, subject),
                          messages_to(to), text(message), html(message), link(message, "confirm")
  publisher               Credentials of a publisher in the database (email, password)
  desk_page               a Page signed in to the desk as `publisher`, showing /admin
  screenshot              screenshot(page, "name") saves docs/screenshots/name.png when
                          SCREENSHOTS is set (make screenshots), else does nothing
Helpers: add_release(app, title, ...), sign_in(page, email, password), phone_fits(page),
cut_off(page) (tables past a phone's edge), and
tests/browser/page_checks.py for labels, contrast and focus.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from flask import Flask
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Response,
    WebError,
    expect,
)
from playwright.sync_api import (
    Error as PlaywrightError,
)
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from service.app_state import get_database
from service.db import utcnow
from service.domain import publishers
from service.domain.content import render_markdown
from service.mailsink import MailSink
from service.models import Release, ReleaseStatus
from tests.conftest import ROOT

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SKIP_MESSAGE = (
    f"browser tests skipped: {CHROMIUM} not found; install it with "
    "`sudo apt-get install chromium` (or run `make test` as root), or set CHROMIUM to its path"
)
TIMEOUT_MS = 20_000  # a shared, noisy 2-core machine: auto-waiting assertions get room
MAIL_TIMEOUT = 60.0
PHONE = {"width": 375, "height": 740}

expect.set_options(timeout=TIMEOUT_MS)


# -- Chromium --------------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _chromium_present() -> None:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(SKIP_MESSAGE)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium, never a browser downloaded by `playwright install`. Tests run as
    root in CI, where Chromium's sandbox cannot start."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
    }


@pytest.fixture(scope="session")
def base_url(live_server: LiveServer) -> str:
    """pytest-playwright's: page.goto("/") opens the live server's front page."""
    return live_server.url


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    """English unless a test says `@pytest.mark.browser_context_args(locale="nb-NO")`."""
    return {
        **browser_context_args,
        "locale": "en-GB",
        "timezone_id": "Europe/Oslo",
        "viewport": {"width": 1100, "height": 800},
    }


# -- what the browser complains about fails the test ------------------------------------------


@dataclass
class BrowserProblems:
    """Console errors, uncaught exceptions, CSP violations, error answers and failed requests
    seen on the context's pages."""

    problems: list[str]
    # Chromium's "Failed to load resource" notices, by the address that failed: a problem
    # unless it is a page the test asked for (a document answered with an error on purpose).
    notices: dict[str, str] = field(default_factory=dict)
    documents: set[str] = field(default_factory=set)
    reported: set[str] = field(default_factory=set)
    context: BrowserContext | None = None
    icons_checked: set[str] = field(default_factory=set)

    def console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        if _is_error_status_notice(message):
            # The browser's own fetches (the favicon) have no request or response event: this
            # notice is all there is of them.
            self.notices[message.location.get("url", "")] = message.text
            return
        self.problems.append(
            f"console error on {message.page and message.page.url}: {message.text}"
        )

    def web_error(self, error: WebError) -> None:
        self.problems.append(f"uncaught {error.error}")

    def response(self, response: Response) -> None:
        # An error answer for the page itself is what some tests ask for; for a style sheet,
        # a script or an image it is a broken page.
        if response.status < 400:
            return
        if response.request.resource_type == "document":
            self.documents.add(response.url)
        else:
            self.reported.add(response.url)
            self.problems.append(f"{response.status} for {response.url}")

    def request_failed(self, request: Request) -> None:
        # Aborted: a page left, or a frame loaded anew, before the answer came; not a fault.
        if request.failure != "net::ERR_ABORTED":
            self.problems.append(f"{request.failure} for {request.url}")

    def check_icons(self) -> None:
        """The browser fetches a page's icon on its own once the page has loaded, often after
        the test is over: the icons of the pages still open are fetched here as it would (their
        <link rel=icon>, else /favicon.ico), each address once."""
        if self.context is None:
            return
        for page in self.context.pages:
            if page.is_closed() or not page.url.startswith(("http://", "https://")):
                continue
            try:
                icons = page.evaluate(
                    "[...document.querySelectorAll('link[rel~=icon]')].map(l => l.href)"
                )
            except PlaywrightError:  # a page on its way elsewhere: its next page is checked
                continue
            for url in icons or [urljoin(page.url, "/favicon.ico")]:
                if url in self.icons_checked:
                    continue
                self.icons_checked.add(url)
                answer = self.context.request.get(url)
                if not answer.ok:
                    self.problems.append(f"{answer.status} for the icon {url}")

    def take(self) -> list[str]:
        notices = [
            f"{text} ({url})"
            for url, text in self.notices.items()
            if url not in self.documents and url not in self.reported
        ]
        taken = [*self.problems, *notices]
        self.problems[:] = []
        self.notices.clear()
        return taken


def _is_error_status_notice(message: ConsoleMessage) -> bool:
    """Chromium logs "Failed to load resource: ... status of 4xx" for every error answer, the
    pages a test asks for on purpose (a wrong password, a spoilt link) included."""
    return message.text.startswith("Failed to load resource: the server responded with a status")


PROBLEMS = pytest.StashKey[BrowserProblems]()


@pytest.fixture
def browser_problems(request: pytest.FixtureRequest) -> BrowserProblems:
    found = BrowserProblems([])
    request.node.stash[PROBLEMS] = found
    return found


@pytest.fixture
def context(context: BrowserContext, browser_problems: BrowserProblems) -> BrowserContext:
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    context.on("console", browser_problems.console)
    context.on("weberror", browser_problems.web_error)
    context.on("response", browser_problems.response)
    context.on("requestfailed", browser_problems.request_failed)
    browser_problems.context = context
    # CSP violations are logged to the console too; the event says so even when a page
    # silences its console.
    context.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => console.error("
        "'CSP violation: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline')))"
    )
    return context


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    result = yield
    found = item.stash.get(PROBLEMS, None)
    if found is not None:
        found.check_icons()
        problems = found.take()
        if problems:
            pytest.fail("the browser reported:\n" + "\n".join(problems), pytrace=False)
    return result


# -- the app on a real HTTP server ------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class LiveServer:
    """The session's app on 127.0.0.1 and a free port, one thread per request."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self.mail_base_url = app.extensions["pressroom.settings"].public_base_url
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="live-server", daemon=True
        )

    def start(self) -> LiveServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def from_mail(self, url: str) -> str:
        """A link from an email (BASE_URL is http://press.example in tests) on this server."""
        assert url.startswith(self.mail_base_url + "/"), f"not a link of this site: {url}"
        return self.url + url[len(self.mail_base_url) :]


@pytest.fixture(scope="session")
def live_server(app: Flask) -> Iterator[LiveServer]:
    server = LiveServer(app).start()
    yield server
    server.stop()


# -- mail --------------------------------------------------------------------------------------


class Inbox:
    """The SMTP sink's mail, read as a reader would: by recipient and subject."""

    def __init__(self, sink: MailSink, server: LiveServer) -> None:
        self.sink = sink
        self.server = server

    def messages_to(self, address: str, subject: str | None = None) -> list[EmailMessage]:
        found = []
        for mail in list(self.sink.handler.received):
            if address.lower() not in (r.lower() for r in mail.recipients):
                continue
            message = mail.message
            if subject is None or subject in str(message["Subject"]):
                found.append(message)
        return found

    def wait_for(
        self,
        address: str,
        subject: str | None = None,
        *,
        count: int = 1,
        timeout: float = MAIL_TIMEOUT,
    ) -> EmailMessage:
        """The `count`-th message to `address` (with `subject` in its Subject), once it came."""
        deadline = time.monotonic() + timeout
        while len(found := self.messages_to(address, subject)) < count:
            if time.monotonic() > deadline:
                subjects = [str(m["Subject"]) for m in self.messages_to(address)]
                raise TimeoutError(
                    f"{len(found)} of {count} mails to {address} about {subject!r} in "
                    f"{timeout}s; it has {subjects}"
                )
            time.sleep(0.05)
        return found[count - 1]

    @staticmethod
    def text(message: EmailMessage) -> str:
        part = message.get_body(("plain",))
        assert part is not None, "the mail has no text/plain part"
        return str(part.get_content())  # type: ignore[attr-defined]

    @staticmethod
    def html(message: EmailMessage) -> str:
        part = message.get_body(("html",))
        assert part is not None, "the mail has no text/html part"
        return str(part.get_content())  # type: ignore[attr-defined]

    def link(self, message: EmailMessage, path: str) -> str:
        """The first {BASE_URL}/<path>/... link of the text body, on the live server."""
        base = re.escape(self.server.mail_base_url)
        match = re.search(rf"{base}/{path}/[A-Za-z0-9._\-]+", self.text(message))
        assert match, f"no /{path}/ link in the mail {message['Subject']!r}"
        return self.server.from_mail(match.group(0))


@pytest.fixture
def inbox(sink: MailSink, live_server: LiveServer, worker: None) -> Inbox:
    return Inbox(sink, live_server)


# -- the desk ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    email: str
    password: str


@pytest.fixture
def publisher(app: Flask) -> Credentials:
    credentials = Credentials("desk@press.example", "correct horse battery staple")
    with app.app_context(), get_database().session_scope() as session:
        publishers.create_publisher(
            session, credentials.email, credentials.password, name="Desk", now=utcnow()
        )
    return credentials


def sign_in(page: Page, email: str, password: str) -> None:
    """Fill in /admin/login as a person would; returns on the page the login led to."""
    page.goto("/admin/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def desk_page(page: Page, publisher: Credentials) -> Page:
    sign_in(page, publisher.email, publisher.password)
    expect(page).to_have_url(re.compile(r"/admin/?$"))
    return page


# -- content, phones, screenshots --------------------------------------------------------------


def add_release(
    app: Flask,
    title: str,
    *,
    summary: str = "",
    body: str = "",
    language: str = "nb",
    published_at: datetime | None = None,
    translations: dict[str, dict[str, str]] | None = None,
) -> str:
    """A release already published and sent (archive only: nobody is mailed); returns its slug."""
    slug = f"{re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-')[:60]}-{uuid.uuid4().hex[:6]}"
    versions = {
        code: {**version, "body_html": render_markdown(version.get("body", ""))}
        for code, version in (translations or {}).items()
    }
    with app.app_context(), get_database().session_scope() as session:
        session.add(
            Release(
                slug=slug,
                title=title,
                summary=summary,
                body=body,
                body_html=render_markdown(body),
                language=language,
                translations=versions,
                status=ReleaseStatus.SENT,
                send_email=False,
                published_at=published_at or utcnow(),
            )
        )
    return slug


_CUT_OFF = """() => {
  const closed = [...document.querySelectorAll('details:not([open])')];
  closed.forEach(d => { d.open = true; });  // a table behind a disclosure is measured too
  const width = document.documentElement.clientWidth, found = [];
  // Inside a 1 px box that hides what overflows it: there for screen readers only.
  const unseen = (el, table) => {
    for (let e = el; e && e !== table.parentElement; e = e.parentElement) {
      const box = e.getBoundingClientRect();
      if (box.width <= 1 && getComputedStyle(e).overflow !== 'visible') return true;
    }
    return false;
  };
  for (const table of document.querySelectorAll('table')) {
    if (table.closest('.release-body')) continue;  // a release's own table scrolls in its box
    for (const el of [table, ...table.querySelectorAll('*')]) {
      const box = el.getBoundingClientRect();
      if (box.width > 1 && box.height > 1 && box.right > width + 0.5 && !unseen(el, table)) {
        const name = table.className || table.closest('[id]')?.id || 'table';
        found.push(`${name}: ${el.tagName.toLowerCase()} "${el.textContent.trim().slice(0, 30)}"`
                   + ` ends at ${Math.round(box.right)} of ${width} px`);
        break;
      }
    }
  }
  closed.forEach(d => { d.open = false; });
  return found;
}"""


def cut_off(page: Page) -> list[str]:
    """Tables (of the page, not of a release's text) with anything right of the viewport's
    edge: clipped, or to be scrolled sideways inside a box, which a phone's reader misses."""
    return list(page.evaluate(_CUT_OFF))


def phone_fits(page: Page) -> bool:
    """Nothing sticks out sideways: the page needs no horizontal scrolling, and no table reaches
    past the viewport's right edge (in a scroll box of its own, or clipped). Measured once the
    page and its style sheet have loaded (a click returns as soon as the next page starts)."""
    page.wait_for_load_state("load")
    scrolls = not page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    return not scrolls and not cut_off(page)


@pytest.fixture
def screenshot() -> Callable[..., None]:
    """screenshot(page, "front-page") writes $SCREENSHOTS/front-page.png, only when SCREENSHOTS
    is set (`make screenshots`); the README shows the files of docs/screenshots/."""
    folder = os.environ.get("SCREENSHOTS")

    def take(page: Page, name: str, *, full_page: bool = True) -> None:
        if not folder:
            return
        target = Path(folder) if os.path.isabs(folder) else ROOT / folder
        target.mkdir(parents=True, exist_ok=True)
        page.evaluate("document.activeElement && document.activeElement.blur()")
        page.screenshot(
            path=target / f"{name}.png", full_page=full_page, animations="disabled", caret="hide"
        )

    return take
