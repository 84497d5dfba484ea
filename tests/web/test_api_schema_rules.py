"""The API does what its OpenAPI document says, field by field (issue 9 item 6).

tests/test_api_contract.py fuzzes the whole document with schemathesis; these pin each rule
it found broken, and their siblings, with the answer a client sees and what was stored.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from service import create_app
from service.app_state import get_database
from service.domain.addresses import ADDRESS_PATTERN, normalize_address
from service.domain.errors import InvalidAddress
from service.models import Release, Subscriber
from tests.conftest import make_settings
from tests.pipeline.helpers import api_token

VALID = {"title": "Tittel", "summary": "Kort", "body": "Tekst", "language": "nb"}
SOON = (datetime.now(UTC) + timedelta(days=3)).isoformat()


def call(client: FlaskClient, token: str, method: str, path: str, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    return client.open(f"/api/v1{path}", method=method, json=body, headers=headers)


def count(app: Flask, model: type) -> int:
    with app.app_context(), get_database().session_scope() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def document(client: FlaskClient) -> dict[str, Any]:
    return client.get("/api/v1/openapi.json").get_json()


def test_every_null_an_answer_holds_is_nullable_in_its_schema(
    app: Flask, client: FlaskClient
) -> None:
    token = api_token(app)
    created = call(client, token, "POST", "/releases", VALID)
    assert created.status_code == 201
    answer = created.get_json()
    assert answer["publish_at"] is None and answer["published_at"] is None
    schema = document(client)["components"]["schemas"]["Release"]
    assert set(answer) <= set(schema["required"])
    for name, value in answer.items():
        if value is None:
            assert schema["properties"][name].get("nullable") is True, name
    subscriber = document(client)["components"]["schemas"]["Subscriber"]["properties"]
    assert subscriber["confirmed_at"]["nullable"] is True


@pytest.mark.parametrize(
    "field",
    ["title", "summary", "body", "language", "topics", "translations", "publish", "email",
     "fallback_to_primary"],
)  # fmt: skip
def test_null_is_refused_where_it_means_nothing(
    app: Flask, client: FlaskClient, field: str
) -> None:
    answer = call(client, api_token(app), "POST", "/releases", {**VALID, field: None})
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert answer.get_json()["error"]["code"] == "invalid_input"
    assert count(app, Release) == 0


def test_null_times_mean_none_and_say_so(app: Flask, client: FlaskClient) -> None:
    token = api_token(app)
    answer = call(
        client, token, "POST", "/releases", {**VALID, "publish_at": None, "published_at": None}
    )
    assert answer.status_code == 201
    assert answer.get_json()["status"] == "draft"
    request = document(client)["components"]["schemas"]["ReleaseRequest"]["properties"]
    assert request["publish_at"]["nullable"] and request["published_at"]["nullable"]
    assert not request["title"].get("nullable") and not request["publish"].get("nullable")


def test_an_edit_never_takes_null_for_text_and_null_unschedules(
    app: Flask, client: FlaskClient
) -> None:
    token = api_token(app)
    release = call(client, token, "POST", "/releases", VALID).get_json()
    path = f"/releases/{release['id']}"
    emptied = call(client, token, "PATCH", path, {"body": None})
    assert emptied.status_code == 422
    assert call(client, token, "GET", path).get_json()["body"] == "Tekst"
    # null on a draft: nothing was scheduled, nothing changes.
    assert call(client, token, "PATCH", path, {"publish_at": None}).status_code == 200
    scheduled = call(client, token, "PATCH", path, {"publish_at": SOON}).get_json()
    assert scheduled["status"] == "scheduled"
    back = call(client, token, "PATCH", path, {"publish_at": None}).get_json()
    assert (back["status"], back["publish_at"]) == ("draft", None)
    published = call(client, token, "POST", f"{path}/publish").get_json()
    assert published["status"] in ("sending", "published", "sent")
    gone = call(client, token, "PATCH", path, {"publish_at": None})
    assert gone.status_code == 409


@pytest.mark.parametrize(
    "change",
    [
        {"language": "NB"},
        {"language": " nb"},
        {"language": ""},
        {"topics": [""]},
        {"topics": ["Politics"]},
        {"topics": [" politics"]},
        {"topics": ["politics\n"]},
        {"topics": "politics,economy"},
        {"topics": ["politics"] * 21},
        {"translations": []},
        {"translations": ""},
        {"translations": {"EN": {"title": "x"}}},
        {"translations": {"en": {"title": "x", "teaser": "y"}}},
        {"translations": {"en": {"title": "x", "body": None}}},
        {"title": " " * 301 + "x"},
        {"publish_at": "2030-01-01T09:00+01:00"},
        {"publish_at": "2030-01-01 09:00:00+01:00"},
        {"publish_at": " 2030-01-01T09:00:00+01:00"},
        {"publish_at": "20300101T090000+0100"},
        {"publish_at": "2030-W01-1T09:00:00+01:00"},
        {"publish": True, "publish_at": SOON},
    ],
)
def test_what_the_schema_forbids_the_api_refuses(
    app: Flask, client: FlaskClient, change: dict[str, Any]
) -> None:
    answer = call(client, api_token(app), "POST", "/releases", {**VALID, **change})
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert count(app, Release) == 0


def test_what_the_schema_allows_the_api_takes(app: Flask, client: FlaskClient) -> None:
    token = api_token(app)
    allowed = [
        {"publish_at": "2030-01-01t09:00:00z"},
        {"publish_at": "2030-01-01T09:00:00.123456789+01:00"},
        {"topics": ["politics", "politics"]},
        {"translations": {"en": {"title": "Title"}}},
        {"published_at": "2001-01-01T00:00:00Z", "email": False},
    ]
    for change in allowed:
        answer = call(client, token, "POST", "/releases", {**VALID, **change})
        assert answer.status_code == 201, (change, answer.get_data(as_text=True))


def test_a_translation_in_the_stored_language_conflicts_with_the_release(
    app: Flask, client: FlaskClient
) -> None:
    token = api_token(app)
    release = call(client, token, "POST", "/releases", VALID).get_json()
    path = f"/releases/{release['id']}"
    conflict = call(client, token, "PATCH", path, {"translations": {"nb": {"title": "x"}}})
    assert conflict.status_code == 409
    moved = call(
        client, token, "PATCH", path, {"language": "en", "translations": {"nb": {"title": "N"}}}
    )
    assert moved.status_code == 200
    assert moved.get_json()["language"] == "en"


@pytest.mark.parametrize(
    "query",
    ["limit=", "limit=0", "limit=-1", "limit=201", "limit=%C2%B2", "limit=%D9%A3", "limit=+5",
     "before=", "before=-1"],
)  # fmt: skip
def test_release_pages_take_the_integers_their_schema_describes(
    app: Flask, client: FlaskClient, query: str
) -> None:
    answer = call(client, api_token(app), "GET", f"/releases?{query}")
    assert answer.status_code == 422, answer.get_data(as_text=True)


@pytest.mark.parametrize(
    "query", ["limit=", "after=", "limit=1001", "status=", "status=Pending", "after=%C2%B2"]
)
def test_subscriber_pages_take_what_their_schema_describes(
    app: Flask, client: FlaskClient, query: str
) -> None:
    answer = call(client, api_token(app), "GET", f"/subscribers?{query}")
    assert answer.status_code == 422, answer.get_data(as_text=True)


def test_pages_document_their_bounds(client: FlaskClient) -> None:
    paths = document(client)["paths"]
    limits = {
        parameter["name"]: parameter["schema"]
        for parameter in paths["/api/v1/subscribers"]["get"]["parameters"]
    }
    assert (limits["limit"]["minimum"], limits["limit"]["maximum"]) == (1, 1000)
    assert limits["status"]["enum"] == ["pending", "confirmed", "unsubscribed", "bounced"]


@pytest.mark.parametrize(
    "body",
    [
        {"email": "reader@mail.example", "topics": [""]},
        {"email": "reader@mail.example", "topics": ["News"]},
        {"email": "reader@mail.example", "topics": "news,sport"},
        {"email": "reader@mail.example", "topics": None},
        {"email": "reader@mail.example", "language": "EN"},
        {"email": "reader@mail.example", "language": None},
        # Spaces and other invisible characters at the ends are taken off (issue 10, item 4),
        # as the schema's pattern says; within the address they are refused.
        {"email": "reader @mail.example"},
        {"email": "reader@mail.test"},
    ],
)
def test_signups_take_what_their_schema_describes(
    app: Flask, client: FlaskClient, body: dict[str, Any]
) -> None:
    answer = client.post("/api/v1/subscriptions", json=body)
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert count(app, Subscriber) == 0


def test_request_schemas_refuse_unknown_fields_everywhere(client: FlaskClient) -> None:
    schemas = document(client)["components"]["schemas"]
    for name in ("SubscriptionRequest", "ReleaseRequest", "ReleaseEdit", "ReleaseText"):
        assert schemas[name]["additionalProperties"] is False, name
    edit = schemas["ReleaseEdit"]["properties"]
    assert {"language", "email", "fallback_to_primary", "topics", "publish_at"} <= set(edit)


ADDRESSES = [
    "reader@mail.example",
    "First.Last+tag@Sub.Example.COM",
    "a/b=c{d}@x.no",
    "x" * 64 + "@x.no",
    "x" * 65 + "@x.no",
    "reader@mail.test",
    "reader@x.invalid",
    "reader@localhost",
    "reader@printer.local",
    "reader@x.onion",
    "reader@in-addr.arpa",
    "reader@x.c0m",
    "reader@x.c0",
    "reader@ab--cd.no",
    "reader@-x.no",
    "a..b@x.no",
    ".a@x.no",
    "reader@x",
    '"quoted"@x.no',
    "reader@[127.0.0.1]",
    "Name <reader@x.no>",
    "ø@x.no",
    "reader@" + "a" * 64 + ".no",
    "\u200breader@mail.example\ufeff",
    " reader@mail.example\t",
    "read\u200ber@mail.example",
    "reader@mail.test\u200b",
    "bjørn.ås@example.no",
    "bjørn.ås@example.no\u00a0",
]


@pytest.mark.parametrize("address", ADDRESSES)
def test_the_address_pattern_says_what_the_validator_accepts(address: str) -> None:
    try:
        normalize_address(address)
        accepted = True
    except InvalidAddress:
        accepted = False
    assert bool(re.match(ADDRESS_PATTERN, address)) == accepted


def test_erasing_takes_an_address_as_its_schema_describes(app: Flask, client: FlaskClient) -> None:
    token = api_token(app)
    parameters = document(client)["paths"]["/api/v1/subscribers/{email}"]["delete"]["parameters"]
    assert parameters[0]["schema"]["pattern"] == ADDRESS_PATTERN
    assert call(client, token, "DELETE", "/subscribers/nobody@mail.example").status_code == 404
    assert call(client, token, "DELETE", "/subscribers/nobody@mail.test").status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        r'{"title": "a\ud800b", "language": "nb"}',
        r'{"title": "ok", "body": "x\udfff", "language": "nb"}',
        r'{"title": "ok", "summary": "\udfff", "language": "nb"}',
        r'{"title": "ok", "language": "nb", "translations": {"en": {"title": "\ud800"}}}',
        r'{"title": "ok", "language": "nb", "topics": ["\udc00"]}',
        r'{"title": "ok", "language": "nb", "\ud800": 1}',
    ],
)
def test_a_lone_surrogate_in_release_text_is_refused_never_a_500(
    app: Flask, client: FlaskClient, body: str
) -> None:
    """JSON can carry "\\ud800", which is no character (RFC 8259 8.2) and which no database
    stores: refused as invalid input, like a lone surrogate in an address."""
    answer = client.post(
        "/api/v1/releases",
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {api_token(app)}"},
    )
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert answer.get_json()["error"]["code"] == "invalid_input"
    assert count(app, Release) == 0


def test_a_site_with_a_fixed_set_of_topics_lists_them_in_the_signup_schema(
    database_url: str, redis_url: str
) -> None:
    site = create_app(
        make_settings(database_url, redis_url, "smtp://127.0.0.1:1", topics=("kultur", "sport"))
    )
    schema = document(site.test_client())["components"]["schemas"]["SubscriptionRequest"]
    listed = schema["properties"]["topics"]["anyOf"][0]["items"]
    assert listed["enum"] == ["kultur", "sport"]
