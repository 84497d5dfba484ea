"""Bad input to every public endpoint: a clear 4xx, and nothing changes (CONTRACT.md §4, §6, §8).

Table-driven. Each group sends all its cases, through the form and through the API alike, as
subtests. Every case must answer the expected 4xx with a message a person can read (JSON under
/api, an HTML page elsewhere) and leave the subscribers, their topics and the suppressions
exactly as they were. Then, once per group, the worker gets a moment to send whatever the bad
requests might have queued, and a valid request's mail goes through the same first-in-first-out
queue: it must be the only mail. Positive controls at the end show that the same requests, made
valid, do store a row and do send a mail, so that nothing here can pass by testing nothing.
"""

from __future__ import annotations

import html
import io
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from service.app_state import get_database
from service.db import Base, utcnow
from service.domain import subscriptions
from service.domain.tokens import CONFIRM_TTL, UNDO_TTL, Purpose, TokenSigner
from service.mailsink import MailSink
from service.models import ConsentSource, Subscriber, SubscriberStatus
from tests.conftest import csrf_token

SIGNUP_API = "/api/v1/subscriptions"
QUIET_PERIOD = 0.5  # seconds the worker gets to send a mail that it must not send
WATCHED_TABLES = ("subscribers", "subscriber_topics", "suppressions")
# What an error answer must never show: a trace, a Python exception class, a library's name.
LEAKS = re.compile(
    r"Traceback|File \"|\b[A-Z]\w*(?:Error|Exception)\b|\b(?:BadRequest|BadSignature|BadData|"
    r"NotFound|MethodNotAllowed|RequestEntityTooLarge|UnsupportedMediaType|MalformedRequest|"
    r"InvalidInput|InvalidAddress|InvalidToken|ExpiredToken|werkzeug|sqlalchemy|psycopg|"
    r"itsdangerous|email_validator|flask_wtf)\b"
)
TOO_LARGE = 100 * 1024


# ---------------------------------------------------------------------------------------------
# The parts every group uses


@dataclass(frozen=True)
class Reader:
    """A browser that loaded the press room (session cookie and CSRF token), and a bare client
    without cookies, as an integrator's program or a mail provider's one-click POST is."""

    browser: FlaskClient
    bare: FlaskClient
    csrf: str
    foreign_csrf: str  # a valid token, but of another browser's session

    def form(
        self,
        path: str,
        fields: dict[str, Any] | list[tuple[str, Any]] | None = None,
        *,
        csrf: str | None = "own",
    ) -> TestResponse:
        data = MultiDict(fields or {})
        if csrf == "own":
            data.add("csrf_token", self.csrf)
        elif csrf is not None:
            data.add("csrf_token", csrf)
        return self.browser.post(path, data=data)

    def json(self, body: Any, path: str = SIGNUP_API) -> TestResponse:
        return self.bare.post(path, json=body)

    def raw(
        self, data: str | bytes, content_type: str | None, path: str = SIGNUP_API
    ) -> TestResponse:
        return self.bare.post(path, data=data, content_type=content_type)


@dataclass(frozen=True)
class Case:
    name: str
    send: Callable[[Reader], TestResponse]
    status: int
    says: str  # words the message must hold (the clients ask for English)


@pytest.fixture
def reader(app: Flask) -> Reader:
    def english_client(**kwargs: Any) -> FlaskClient:
        client = app.test_client(**kwargs)
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
        return client

    browser, other = english_client(), english_client()
    return Reader(
        browser=browser,
        bare=english_client(use_cookies=False),
        csrf=csrf_token(browser.get("/").text),
        foreign_csrf=csrf_token(other.get("/").text),
    )


def snapshot(app: Flask) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables a request could change, in a comparable form."""
    with app.app_context(), get_database().session_scope() as session:
        return {
            name: sorted(
                (tuple(row) for row in session.execute(select(Base.metadata.tables[name]))),
                key=repr,
            )
            for name in WATCHED_TABLES
        }


def main_text(page: str) -> str:
    """The words a person sees in the page's main part."""
    match = re.search(r"<main\b[^>]*>(.*?)</main>", page, re.S)
    assert match, "the page has no <main>"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def assert_clear_refusal(response: TestResponse, status: int, says: str) -> None:
    body = response.get_data(as_text=True)
    assert response.status_code == status, f"{response.status_code} {body[:400]}"
    if response.request.path.startswith("/api/"):
        assert response.mimetype == "application/json", response.mimetype
        answer = response.get_json()
        assert isinstance(answer, dict) and set(answer) == {"error"}, answer
        error = answer["error"]
        assert isinstance(error, dict) and set(error) == {"code", "message"}, error
        assert isinstance(error["code"], str) and error["code"], error
        assert isinstance(error["message"], str) and error["message"].strip(), error
        message = error["message"]
    else:
        assert response.mimetype == "text/html", response.mimetype
        message = main_text(body)
        assert "<script" not in body.lower(), "the page reflects markup"
    assert says.lower() in message.lower(), f"{says!r} not in {message!r}"
    leak = LEAKS.search(body)
    assert leak is None, f"the answer shows {leak.group(0)!r}: {body[:400]}"


def run_cases(app: Flask, reader: Reader, cases: Iterable[Case], subtests: pytest.Subtests) -> int:
    count = 0
    for case in cases:
        count += 1
        with subtests.test(msg=case.name):
            before = snapshot(app)
            response = case.send(reader)
            assert_clear_refusal(response, case.status, case.says)
            after = snapshot(app)
            assert {t: len(rows) for t, rows in after.items()} == {
                t: len(rows) for t, rows in before.items()
            }, "rows were added or removed"
            assert after == before, "stored data changed"
    return count


def assert_no_mail_but_the_control(
    sink: MailSink, send_control: Callable[[], TestResponse], recipient: str
) -> None:
    """Nothing arrives in the quiet period; then a valid request's mail is the only one. The
    solo worker takes tasks in order, so a mail queued by a bad request would have come first."""
    time.sleep(QUIET_PERIOD)
    assert sink.handler.received == [], [m.recipients for m in sink.handler.received]
    answer = send_control()
    assert answer.status_code in (200, 202), answer.get_data(as_text=True)[:400]
    mails = sink.handler.wait_for(1)
    assert [m.recipients for m in mails] == [(recipient,)]


def api_control(reader: Reader, email: str) -> Callable[[], TestResponse]:
    return lambda: reader.json({"email": email})


# ---------------------------------------------------------------------------------------------
# Group 1: the address, through the form and the API

HOSTILE_ADDRESSES: list[tuple[str, str]] = [
    ("CR LF header injection", "a@x.example\r\nBcc: b@y.example"),
    ("LF header injection", "a@x.example\nBcc: b@y.example"),
    ("CR inside", "a\r@x.example"),
    ("NUL at the end", "a@x.example\x00"),
    ("NUL inside", "a\x00b@x.example"),
    ("tab inside", "a\t@x.example"),
    ("Unicode line separator", "a@x.example\u2028Bcc: b@y.example"),
    ("RFC 2047 encoded word", "=?utf-8?q?a=0D=0ABcc=3A_b=40y.example?=@x.example"),
    ("encoded-word opener", "a=?b@x.example"),
    ("zero-width space", "a\u200b@x.example"),
    ("right-to-left override", "a\u202e@x.example"),
    ("two, comma", "a@x.example, b@x.example"),
    ("two, semicolon", "a@x.example;b@x.example"),
    ("two, space", "a@x.example b@x.example"),
    ("display name", "Bob <bob@x.example>"),
    ("quoted display name", '"Bob" <bob@x.example>'),
    ("angle brackets", "<bob@x.example>"),
    ("markup", "<script>alert(1)</script>@x.example"),
    ("local part of 65", "a" * 65 + "@x.example"),
    ("domain label of 64", "a@" + "b" * 64 + ".example"),
    ("255 characters", "a" * 10 + "@" + ".".join(["b" * 60] * 4) + ".example"),
    ("5000 characters", "a" * 5000 + "@x.example"),
    ("empty", ""),
    ("whitespace only", " \t  "),
    ("no @", "a.x.example"),
    ("two @", "a@b@x.example"),
    ("nothing before @", "@x.example"),
    ("nothing after @", "a@"),
    ("leading dot", ".a@x.example"),
    ("trailing dot before @", "a.@x.example"),
    ("two dots", "a..b@x.example"),
    ("domain ends with dot", "a@x.example."),
    ("domain label starts with hyphen", "a@-x.example"),
    ("domain literal", "a@[127.0.0.1]"),
    ("IPv6 domain literal", "a@[IPv6:::1]"),
    ("quoted local part", '"a b"@x.example'),
    ("quoted local part without space", '"ab"@x.example'),
    ("comment", "a(comment)@x.example"),
    ("mailto URL", "mailto:a@x.example"),
    ("special-use .test", "a@x.test"),
    ("special-use .localhost", "a@x.localhost"),
    ("special-use .invalid", "a@x.invalid"),
    ("bare host name", "a@localhost"),
]

NOT_A_STRING: list[tuple[str, Any]] = [
    ("number", 42),
    ("float", 4.2),
    ("list", ["a@x.example"]),
    ("object", {"address": "a@x.example"}),
    ("null", None),
    ("true", True),
    ("false", False),
]


def address_cases() -> Iterator[Case]:
    for name, value in HOSTILE_ADDRESSES:
        yield Case(
            f"form, {name}",
            lambda r, v=value: r.form("/subscribe", {"email": v}),
            422,
            "email address",
        )
        yield Case(f"API, {name}", lambda r, v=value: r.json({"email": v}), 422, "email address")
    # JSON can carry what no form can: a lone surrogate, and values that are no text at all.
    yield Case(
        "API, lone surrogate", lambda r: r.json({"email": "\ud800@x.example"}), 422, "email address"
    )
    for name, value in NOT_A_STRING:
        yield Case(
            f"API, email is {name}", lambda r, v=value: r.json({"email": v}), 422, "email address"
        )


def test_hostile_addresses_are_refused_and_change_nothing(
    app: Flask, reader: Reader, sink: MailSink, worker: None, subtests: pytest.Subtests
) -> None:
    assert run_cases(app, reader, address_cases(), subtests) >= 20
    assert_no_mail_but_the_control(
        sink, api_control(reader, "control@x.example"), "control@x.example"
    )


# ---------------------------------------------------------------------------------------------
# Group 2: language and topics (the address is valid: the other field alone must refuse it)

VALID = "reader@x.example"

BAD_LANGUAGES: list[tuple[str, Any]] = [
    ("German", "de"),
    ("a word", "english"),
    ("a region", "nb-NO"),
    ("NUL", "nb\x00"),
]
BAD_JSON_LANGUAGES: list[tuple[str, Any]] = [
    ("a number", 5),
    ("a list", ["nb"]),
    ("an object", {"nb": True}),
    ("true", True),
]
BAD_FORM_TOPICS: list[tuple[str, str]] = [
    ("a space", "foreign affairs"),
    ("non-ASCII capitals", "ØKONOMI"),
    ("punctuation", "news!"),
    ("a leading hyphen", "-news"),
    ("41 characters", "a" * 41),
    ("21 topics", ",".join(f"topic-{i}" for i in range(21))),
    ("markup", "<b>news</b>"),
]
BAD_JSON_TOPICS: list[tuple[str, Any]] = [
    ("a number", 5),
    ("an object", {"news": True}),
    ("true", True),
    ("a list of numbers", [1, 2]),
    ("a list with null", [None]),
    ("a nested list", [["news"]]),
    ("a space", ["foreign affairs"]),
    ("non-ASCII capitals", ["ØKONOMI"]),
    ("41 characters", ["a" * 41]),
    ("21 topics", [f"topic-{i}" for i in range(21)]),
]


def field_cases() -> Iterator[Case]:
    for name, value in BAD_LANGUAGES:
        yield Case(
            f"form, language {name}",
            lambda r, v=value: r.form("/subscribe", {"email": VALID, "language": v}),
            422,
            "language",
        )
    for name, value in BAD_LANGUAGES + BAD_JSON_LANGUAGES:
        yield Case(
            f"API, language {name}",
            lambda r, v=value: r.json({"email": VALID, "language": v}),
            422,
            "language",
        )
    for name, value in BAD_FORM_TOPICS:
        yield Case(
            f"form, topics with {name}",
            lambda r, v=value: r.form("/subscribe", {"email": VALID, "topics": v}),
            422,
            "topic",
        )
    yield Case(
        "form, 21 topic fields",
        lambda r: r.form(
            "/subscribe", [("email", VALID), *(("topics", f"topic-{i}") for i in range(21))]
        ),
        422,
        "topic",
    )
    for name, value in BAD_JSON_TOPICS:
        yield Case(
            f"API, topics {name}",
            lambda r, v=value: r.json({"email": VALID, "topics": v}),
            422,
            "topic",
        )


def test_bad_language_or_topics_refuse_a_valid_address(
    app: Flask, reader: Reader, sink: MailSink, worker: None, subtests: pytest.Subtests
) -> None:
    assert run_cases(app, reader, field_cases(), subtests) >= 20
    assert_no_mail_but_the_control(sink, api_control(reader, VALID), VALID)


# ---------------------------------------------------------------------------------------------
# Group 3: the shape of the request: body, media type, size, fields, CSRF, methods, paths


def nested(depth: int) -> str:
    return '{"email": ' + "[" * depth + "]" * depth + "}"


def request_cases() -> Iterator[Case]:
    json_type = "application/json"
    api_bodies: list[tuple[str, str | bytes, int, str]] = [
        ("broken JSON", '{"email": "a@x.example"', 400, "not valid JSON"),
        ("empty body", "", 400, "not valid JSON"),
        ("a JSON array", '["a@x.example"]', 400, "JSON object"),
        ("a JSON string", '"a@x.example"', 400, "JSON object"),
        ("JSON null", "null", 400, "JSON object"),
        ("a JSON number", "42", 400, "JSON object"),
        ("JSON nested 20,000 deep", nested(20_000), 400, "not valid JSON"),
        ("invalid UTF-8", b'{"email": "\xff\xfe@x.example"}', 400, "not valid JSON"),
        ("the same field twice", '{"email": "a@x.example", "email": "b@x.example"}', 400, "JSON"),
        ("NaN as the address", '{"email": NaN}', 422, "email address"),
    ]
    for name, body, status, says in api_bodies:
        yield Case(f"API, {name}", lambda r, b=body: r.raw(b, json_type), status, says)
    wrong_types: list[tuple[str, str | None]] = [
        ("text/plain", "text/plain"),
        ("form-encoded", "application/x-www-form-urlencoded"),
        ("multipart", "multipart/form-data; boundary=x"),
        ("XML", "application/xml"),
        ("no Content-Type", None),
    ]
    for name, content_type in wrong_types:
        yield Case(
            f"API, {name}",
            lambda r, t=content_type: r.raw('{"email": "a@x.example"}', t),
            415,
            "JSON",
        )
    yield Case(
        "API, 100 KB body",
        lambda r: r.raw('{"email": "' + "a" * TOO_LARGE + '@x.example"}', json_type),
        413,
        "too large",
    )
    yield Case(
        "API, unknown fields",
        lambda r: r.json({"email": VALID, "admin": True, "status": "confirmed"}),
        422,
        "unknown field",
    )
    yield Case("API, no email field", lambda r: r.json({"language": "en"}), 422, "email")
    yield Case("API, empty object", lambda r: r.json({}), 422, "email")

    yield Case(
        "form, two email fields",
        lambda r: r.form("/subscribe", [("email", "a@x.example"), ("email", "b@x.example")]),
        422,
        "one email address",
    )
    yield Case("form, no email field", lambda r: r.form("/subscribe", {}), 422, "email address")
    yield Case(
        "form, the address as a file upload",
        lambda r: r.form("/subscribe", {"email": (io.BytesIO(b"a@x.example"), "a.txt")}),
        422,
        "email address",
    )
    yield Case(
        "form, JSON body with a CSRF header",
        lambda r: r.browser.post(
            "/subscribe", json={"email": VALID}, headers={"X-CSRFToken": r.csrf}
        ),
        422,
        "email address",
    )
    yield Case(
        "form, no CSRF token",
        lambda r: r.form("/subscribe", {"email": VALID}, csrf=None),
        400,
        "form",
    )
    yield Case(
        "form, forged CSRF token",
        lambda r: r.form("/subscribe", {"email": VALID}, csrf="forged"),
        400,
        "form",
    )
    yield Case(
        "form, CSRF token of another session",
        lambda r: r.form("/subscribe", {"email": VALID}, csrf=r.foreign_csrf),
        400,
        "form",
    )
    yield Case(
        "form, no session cookie",
        lambda r: r.bare.post("/subscribe", data={"email": VALID, "csrf_token": r.csrf}),
        400,
        "form",
    )
    yield Case(
        "form, 100 KB body",
        lambda r: r.form("/subscribe", {"email": "a" * TOO_LARGE + "@x.example"}),
        413,
        "too large",
    )

    for method in ("GET", "PUT", "PATCH", "DELETE"):
        if method != "GET":  # GET /subscribe (a reload) leads back to the form instead
            yield Case(
                f"{method} /subscribe",
                lambda r, m=method: r.browser.open("/subscribe", method=m),
                405,
                "method",
            )
        yield Case(
            f"{method} {SIGNUP_API}",
            lambda r, m=method: r.bare.open(SIGNUP_API, method=m, json={"email": VALID}),
            405,
            "method",
        )
    yield Case("DELETE /confirm/<token>", lambda r: r.browser.delete("/confirm/x"), 405, "method")
    yield Case("PUT /unsubscribe/<token>", lambda r: r.bare.put("/unsubscribe/x"), 405, "method")
    for path in ("/nowhere", "/confirm/", "/confirm/a/b", "/preferences/x/other", "/subscribe/x"):
        yield Case(f"GET {path}", lambda r, p=path: r.browser.get(p), 404, "nothing")
    yield Case("POST /nowhere", lambda r: r.form("/nowhere", {"email": VALID}), 404, "nothing")
    for path in ("/api/v1/nowhere", "/api/v2/subscriptions", "/api/"):
        yield Case(
            f"POST {path}", lambda r, p=path: r.json({"email": VALID}, path=p), 404, "nothing"
        )


def test_malformed_requests_are_refused_and_change_nothing(
    app: Flask, reader: Reader, sink: MailSink, worker: None, subtests: pytest.Subtests
) -> None:
    assert run_cases(app, reader, request_cases(), subtests) >= 20
    assert_no_mail_but_the_control(sink, api_control(reader, VALID), VALID)


def test_method_not_allowed_names_the_allowed_methods(reader: Reader) -> None:
    for answer in (reader.browser.put("/subscribe"), reader.bare.get(SIGNUP_API)):
        assert answer.status_code == 405
        assert "POST" in answer.headers.get("Allow", ""), answer.headers


# ---------------------------------------------------------------------------------------------
# Group 4: links. Tokens that are garbage, forged, too long, expired, used, or made for another
# purpose, on every page a link leads to.


@dataclass(frozen=True)
class Links:
    uid: str
    version: int
    confirm: str
    unsubscribe: str
    preferences: str
    undo: str

    def of(self, purpose: Purpose) -> str:
        return {
            Purpose.CONFIRM: self.confirm,
            Purpose.UNSUBSCRIBE: self.unsubscribe,
            Purpose.PREFERENCES: self.preferences,
            Purpose.UNDO: self.undo,
        }[purpose]


def pending_reader(app: Flask, email: str) -> Links:
    """A real pending subscriber with topics, made by the domain; its four real tokens.

    Pending, so that any link that worked would change something: confirm it, unsubscribe it,
    change its language or topics, or erase it."""
    signer: TokenSigner = app.extensions["pressroom.signer"]
    with app.app_context(), get_database().session_scope() as session:
        subscriptions.subscribe(
            session,
            subscriptions.Signup(
                email=email,
                language="en",
                topics=["energy"],
                source=ConsentSource.API,
                consent_text_version="test",
            ),
            now=utcnow(),
        )
        subscriber = subscriptions.find_by_email(session, email)
        assert subscriber is not None and subscriber.status is SubscriberStatus.PENDING
        return Links(
            uid=subscriber.uid,
            version=subscriber.token_version,
            confirm=subscriptions.confirm_token(signer, subscriber),
            unsubscribe=subscriptions.unsubscribe_token(signer, subscriber),
            preferences=subscriptions.preferences_token(signer, subscriber),
            # A pending reader's undo link: were it taken, it would confirm them.
            undo=subscriptions.undo_token(signer, subscriber),
        )


Send = Callable[[Reader, str], TestResponse]

LINK_ENDPOINTS: list[tuple[str, Purpose, Send]] = [
    ("GET /confirm", Purpose.CONFIRM, lambda r, t: r.browser.get(f"/confirm/{t}")),
    ("POST /confirm", Purpose.CONFIRM, lambda r, t: r.form(f"/confirm/{t}")),
    ("GET /unsubscribe", Purpose.UNSUBSCRIBE, lambda r, t: r.browser.get(f"/unsubscribe/{t}")),
    (
        "POST /unsubscribe (one-click)",
        Purpose.UNSUBSCRIBE,
        lambda r, t: r.raw(
            "List-Unsubscribe=One-Click", "application/x-www-form-urlencoded", f"/unsubscribe/{t}"
        ),
    ),
    ("GET /preferences", Purpose.PREFERENCES, lambda r, t: r.browser.get(f"/preferences/{t}")),
    (
        "POST /preferences",
        Purpose.PREFERENCES,
        lambda r, t: r.form(f"/preferences/{t}", {"language": "nb", "topics": "sport"}),
    ),
    (
        "GET /preferences/…/data.json",
        Purpose.PREFERENCES,
        lambda r, t: r.browser.get(f"/preferences/{t}/data.json"),
    ),
    (
        "POST /preferences/…/erase",
        Purpose.PREFERENCES,
        lambda r, t: r.form(f"/preferences/{t}/erase", {"confirm": "yes"}),
    ),
    ("GET /undo", Purpose.UNDO, lambda r, t: r.browser.get(f"/undo/{t}")),
    ("POST /undo", Purpose.UNDO, lambda r, t: r.form(f"/undo/{t}")),
]


def bad_tokens(app: Flask, links: Links, purpose: Purpose) -> Iterator[tuple[str, str, int]]:
    """(name, token as it goes in the path, expected status) for one endpoint's purpose."""
    signer: TokenSigner = app.extensions["pressroom.signer"]
    real = links.of(purpose)
    payload, timestamp, signature = real.split(".")
    for other in Purpose:
        if other is not purpose:
            yield f"a real {other.value} token", links.of(other), 400
    yield "garbage", "not-a-token", 400
    yield "three dots", "a.b.c", 400
    yield "signature changed", f"{payload}.{timestamp}.{signature[:-2]}xx", 400
    yield "payload changed", f"x{payload[1:]}.{timestamp}.{signature}", 400
    forged = signer.dumps(purpose, {"u": "0" * 32, "v": 1}).split(".")[0]
    yield "payload swapped", f"{forged}.{timestamp}.{signature}", 400
    other_key = TokenSigner("another-secret-key-of-another-site")
    yield "signed with another key", other_key.dumps(purpose, {"u": links.uid, "v": 1}), 400
    # Longer links meet the app's URL limit first (414, tests/test_entry_points.py).
    yield "3 KB", "A" * 3_000, 400
    yield "a real token padded to 3 KB", real + "A" * 3_000, 400
    yield "NUL", "%00", 400
    yield "a real token and NUL", real + "%00", 400
    yield "invalid UTF-8", "%FF%FE", 400
    yield "a list as payload", signer.dumps(purpose, ["u", links.uid]), 400  # type: ignore[arg-type]
    yield "a number as uid", signer.dumps(purpose, {"u": 5, "v": links.version}), 400
    if purpose is not Purpose.UNSUBSCRIBE:  # an unknown uid there is an erased reader: a no-op
        yield "nobody's uid", signer.dumps(purpose, {"u": "0" * 32, "v": 1}), 400
    if purpose is Purpose.CONFIRM:
        past = TokenSigner(
            app.extensions["pressroom.settings"].secret_key,
            clock=lambda: time.time() - CONFIRM_TTL.total_seconds() - 60,
        )
        yield "expired", past.dumps(purpose, {"u": links.uid, "v": links.version}), 410
        yield "already used", signer.dumps(purpose, {"u": links.uid, "v": links.version - 1}), 400
    if purpose is Purpose.UNDO:
        past = TokenSigner(
            app.extensions["pressroom.settings"].secret_key,
            clock=lambda: time.time() - UNDO_TTL.total_seconds() - 60,
        )
        yield "expired", past.dumps(purpose, {"u": links.uid, "v": links.version}), 410


def link_cases(app: Flask, links: Links) -> Iterator[Case]:
    for endpoint, purpose, send in LINK_ENDPOINTS:
        for name, token, status in bad_tokens(app, links, purpose):
            yield Case(f"{endpoint}, {name}", lambda r, s=send, t=token: s(r, t), status, "link")


def test_bad_links_are_refused_and_change_nothing(
    app: Flask, reader: Reader, sink: MailSink, worker: None, subtests: pytest.Subtests
) -> None:
    links = pending_reader(app, "pending@x.example")
    # The real tokens open their own pages (so the refusals below are not about a broken
    # subscriber or signer) ...
    for path in (
        f"/confirm/{links.confirm}",
        f"/unsubscribe/{links.unsubscribe}",
        f"/preferences/{links.preferences}",
        f"/preferences/{links.preferences}/data.json",
    ):
        assert reader.browser.get(path).status_code == 200, path
    assert "pending@x.example" in reader.browser.get(f"/preferences/{links.preferences}").text

    # ... and no other token opens any of them.
    assert run_cases(app, reader, link_cases(app, links), subtests) >= 20

    # Finally the real confirm link works, and its welcome mail is the only mail.
    assert_no_mail_but_the_control(
        sink, lambda: reader.form(f"/confirm/{links.confirm}"), "pending@x.example"
    )


# ---------------------------------------------------------------------------------------------
# Group 5: the preferences form and erasure, with a valid link (they send no mail)


def preferences_cases(links: Links) -> Iterator[Case]:
    # No CSRF case here: the token in the URL is the credential (CONTRACT §8), see
    # test_reader_pages.test_token_bearing_forms_work_without_a_session_or_csrf_token.
    path = f"/preferences/{links.preferences}"
    for name, value in BAD_LANGUAGES:
        yield Case(
            f"language {name}",
            lambda r, v=value: r.form(path, {"language": v, "topics": "sport"}),
            422,
            "language",
        )
    for name, value in BAD_FORM_TOPICS:
        yield Case(
            f"topics with {name}",
            lambda r, v=value: r.form(path, {"language": "nb", "topics": v}),
            422,
            "topic",
        )
    yield Case("100 KB body", lambda r: r.form(path, {"topics": "a" * TOO_LARGE}), 413, "too large")
    yield Case("PUT", lambda r: r.browser.put(path, data={"language": "nb"}), 405, "method")
    yield Case("erase, box not ticked", lambda r: r.form(f"{path}/erase"), 422, "tick")
    yield Case(
        "erase, box with another value",
        lambda r: r.form(f"{path}/erase", {"confirm": "no"}),
        422,
        "tick",
    )
    yield Case("erase, GET", lambda r: r.browser.get(f"{path}/erase"), 405, "method")
    yield Case("data.json, POST", lambda r: r.form(f"{path}/data.json"), 405, "method")


def test_bad_preferences_are_refused_and_change_nothing(
    app: Flask, reader: Reader, subtests: pytest.Subtests
) -> None:
    links = pending_reader(app, "pending@x.example")
    assert run_cases(app, reader, preferences_cases(links), subtests) >= 17

    # Control: the same form, valid, does change what is stored (the snapshot would see it).
    before = snapshot(app)
    saved = reader.form(f"/preferences/{links.preferences}", {"language": "nb", "topics": "sport"})
    assert saved.status_code == 303
    assert snapshot(app) != before


# ---------------------------------------------------------------------------------------------
# Positive controls, and what a valid request may carry


def stored(app: Flask, email: str) -> Subscriber:
    with app.app_context(), get_database().session_scope() as session:
        subscriber = subscriptions.find_by_email(session, email)
        assert subscriber is not None, f"no row for {email}"
        session.expunge(subscriber)
        return subscriber


def row_counts(app: Flask) -> dict[str, int]:
    return {name: len(rows) for name, rows in snapshot(app).items()}


def assert_exactly_one_mail_to(sink: MailSink, email: str) -> None:
    mails = sink.handler.wait_for(1)
    time.sleep(0.2)  # a second mail, if any, would be right behind the first
    assert [m.recipients for m in sink.handler.received] == [(email,)]
    assert "confirm" in mails[0].message.get_body(("plain",)).get_content()


def test_control_a_valid_form_signup_stores_one_row_and_sends_one_mail(
    app: Flask, reader: Reader, sink: MailSink, worker: None
) -> None:
    answer = reader.form("/subscribe", {"email": "Form.Reader@X.example", "topics": "energy"})
    assert answer.status_code == 200, answer.text[:400]
    assert answer.mimetype == "text/html"
    assert row_counts(app) == {"subscribers": 1, "subscriber_topics": 1, "suppressions": 0}
    subscriber = stored(app, "form.reader@x.example")
    assert subscriber.status is SubscriberStatus.PENDING
    assert subscriber.consent_source is ConsentSource.FORM
    assert_exactly_one_mail_to(sink, "form.reader@x.example")


def test_control_a_valid_api_signup_stores_one_row_and_sends_one_mail(
    app: Flask, reader: Reader, sink: MailSink, worker: None
) -> None:
    answer = reader.json({"email": "api.reader@x.example", "language": "nb", "topics": ["energy"]})
    assert answer.status_code == 202
    assert answer.get_json() == {"status": "pending"}
    assert row_counts(app) == {"subscribers": 1, "subscriber_topics": 1, "suppressions": 0}
    subscriber = stored(app, "api.reader@x.example")
    assert subscriber.status is SubscriberStatus.PENDING
    assert subscriber.consent_source is ConsentSource.API
    assert subscriber.language == "nb"
    assert_exactly_one_mail_to(sink, "api.reader@x.example")


def test_blank_language_and_topics_mean_not_given(
    app: Flask, reader: Reader, sink: MailSink, worker: None
) -> None:
    """A decision, not an accident: an empty language or topics field is what a form sends for
    "not chosen", and a JSON client forwarding a form sends the same. The reader gets the page's
    language and every topic, as when the field is left out; a wrong value is refused above."""
    answer = reader.json({"email": VALID, "language": "", "topics": ""})
    assert answer.status_code == 202
    subscriber = stored(app, VALID)
    assert (subscriber.language, subscriber.topics) == ("en", [])
    assert_exactly_one_mail_to(sink, VALID)


def test_a_hostile_user_agent_does_not_break_a_valid_signup(
    app: Flask, reader: Reader, sink: MailSink, worker: None
) -> None:
    """The consent record keeps the User-Agent, but no control character (PostgreSQL refuses
    NUL, and a 500 would turn a valid signup away) and at most 512 characters."""
    answer = reader.bare.post(
        SIGNUP_API, json={"email": VALID}, headers={"User-Agent": "Evil\x00Agent\x07" + "x" * 600}
    )
    assert answer.status_code == 202, answer.get_data(as_text=True)[:400]
    user_agent = stored(app, VALID).consent_user_agent
    assert user_agent is not None and user_agent.startswith("EvilAgentxxx")
    assert len(user_agent) == 512
    assert_exactly_one_mail_to(sink, VALID)
