"""The API speaks English to a request that names no language (curl), bokmål when its
Accept-Language asks for Norwegian (RFC 9110 §12.5.4), in every answer: 401s, validation
messages, Werkzeug's own errors. Pages keep Norwegian first. Every 201 names its resource in
Location (RFC 9110 §15.3.2), and the OpenAPI document says so."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from service.app_state import get_database
from service.models import Subscriber
from tests.pipeline.helpers import api_token

ENGLISH_401 = "A valid API token is needed"
NORWEGIAN_401 = "Du trenger et gyldig API-token"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, ENGLISH_401),
        ("", ENGLISH_401),
        ("*", ENGLISH_401),
        ("de-DE,de;q=0.9", ENGLISH_401),
        ("en-US,en;q=0.9", ENGLISH_401),
        ("nb-NO", NORWEGIAN_401),
        ("nb", NORWEGIAN_401),
        ("no", NORWEGIAN_401),
        ("nn-NO", NORWEGIAN_401),
        ("en;q=0.3, nb-NO;q=0.8", NORWEGIAN_401),
        ("nb;q=0, en", ENGLISH_401),
        ("nb;q=0", ENGLISH_401),
        ("de, nb;q=0.5", NORWEGIAN_401),
    ],
)
def test_the_api_answers_in_english_unless_asked_for_bokmal(
    client: FlaskClient, accept: str | None, expected: str
) -> None:
    headers = {} if accept is None else {"Accept-Language": accept}
    answer = client.get("/api/v1/releases", headers=headers)
    assert answer.status_code == 401
    assert answer.get_json()["error"]["message"].startswith(expected), answer.get_json()


def test_validation_and_http_errors_are_english_for_curl(client: FlaskClient) -> None:
    # Neither the session (a desk visit in ?lang=nb) nor ?lang changes the API's language.
    client.get("/?lang=nb")
    missing = client.post("/api/v1/subscriptions?lang=nb", json={"language": "nb"})
    assert missing.status_code == 422
    assert missing.get_json()["error"]["message"] == "The field 'email' is required."
    nowhere = client.get("/api/v1/no-such-call")
    assert nowhere.status_code == 404
    assert nowhere.get_json()["error"]["message"] == "There is nothing at this address."
    norwegian = client.get("/api/v1/no-such-call", headers={"Accept-Language": "nb-NO"})
    assert norwegian.get_json()["error"]["message"] == "Det finnes ingenting på denne adressen."
    wrong = client.post("/api/v1/subscriptions", json={}, headers={"Accept-Language": "nb"})
    assert wrong.get_json()["error"]["message"] == "Feltet «email» må fylles ut."


def test_pages_stay_norwegian_first(app: Flask) -> None:
    assert '<html lang="nb"' in app.test_client().get("/").text
    refused = app.test_client().get("/", headers={"Accept-Language": "en;q=0, *"})
    assert '<html lang="nb"' in refused.text


@pytest.mark.parametrize(
    ("accept", "language"), [(None, "nb"), ("en-GB", "en"), ("nb-NO", "nb"), ("de", "nb")]
)
def test_an_api_signup_without_a_language_takes_the_readers_not_the_apis(
    app: Flask, client: FlaskClient, accept: str | None, language: str
) -> None:
    headers = {} if accept is None else {"Accept-Language": accept}
    answer = client.post(
        "/api/v1/subscriptions", json={"email": "kari@mail.example"}, headers=headers
    )
    assert answer.status_code == 202, answer.get_json()
    with app.app_context(), get_database().session_scope() as session:
        stored = session.scalars(select(Subscriber.language)).all()
    assert stored == [language]


def test_a_created_release_is_named_in_location(app: Flask, client: FlaskClient) -> None:
    token = {"Authorization": f"Bearer {api_token(app)}"}
    release = {"title": "Tittel", "language": "nb"}
    answer = client.post("/api/v1/releases", json=release, headers=token)
    assert answer.status_code == 201
    location = answer.headers.get("Location")
    assert location == f"/api/v1/releases/{answer.get_json()['id']}"
    assert client.get(location, headers=token).get_json() == answer.get_json()


def test_every_201_in_the_openapi_document_has_a_location_header(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    created = [
        (path, method, operation["responses"]["201"])
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if isinstance(operation, dict) and "201" in operation.get("responses", {})
    ]
    assert created
    for path, method, response in created:
        assert "Location" in response.get("headers", {}), (path, method)


def test_api_answers_name_their_language_and_vary_by_it(client: FlaskClient) -> None:
    for accept, language in ((None, "en"), ("nb-NO", "nb")):
        headers = {} if accept is None else {"Accept-Language": accept}
        for path in ("/api/v1/releases", "/api/v1/no-such-call", "/api/v1/openapi.json"):
            answer = client.get(path, headers=headers)
            assert answer.headers["Content-Language"] == language, path
            assert "Accept-Language" in answer.headers["Vary"], path
