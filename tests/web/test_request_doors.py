"""Doors every route shares: NUL in a path or query, digits that are not ASCII, a search that
is not a pattern. Found by probing the running app from outside after issue 9."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.pipeline.helpers import add_subscribers, api_token


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/subscribers?email=%00",
        "/api/v1/subscribers?email=a%00b",
    ],
)
def test_nul_in_the_api_search_is_a_422_never_a_500(
    app: Flask, client: FlaskClient, path: str
) -> None:
    answer = client.get(path, headers={"Authorization": f"Bearer {api_token(app)}"})
    assert answer.status_code == 422, answer.get_data(as_text=True)[:300]
    assert answer.json["error"]["code"] == "invalid_input"


@pytest.mark.parametrize("path", ["/releases/%00", "/releases/x%00?lang=en"])
def test_nul_in_a_release_address_is_a_404(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 404


@pytest.mark.parametrize("digit", ["١", "１", "𝟏"])
def test_ids_in_paths_are_ascii_digits(app: Flask, client: FlaskClient, digit: str) -> None:
    token = api_token(app)
    headers = {"Authorization": f"Bearer {token}"}
    created = client.post(
        "/api/v1/releases",
        json={"title": "Tittel", "language": "nb"},
        headers=headers,
    )
    assert created.status_code == 201
    release_id = created.json["id"]
    zero = ord(digit) - 1  # the id written in that script's digits
    spelled = "".join(chr(zero + int(d)) for d in str(release_id))
    assert int(spelled) == release_id  # Python reads it as that number
    assert client.get(f"/api/v1/releases/{spelled}", headers=headers).status_code == 404
    edit = client.patch(f"/api/v1/releases/{spelled}", json={"title": "Ny"}, headers=headers)
    assert edit.status_code == 404
    assert client.get(f"/api/v1/releases/{release_id}", headers=headers).json["title"] == "Tittel"


def test_the_api_search_by_address_is_not_a_pattern(app: Flask, client: FlaskClient) -> None:
    add_subscribers(app, ["a1@news.example", "kari@mail.example"])
    headers = {"Authorization": f"Bearer {api_token(app)}"}
    for text in ("%", "_", "a1_news"):
        found = client.get("/api/v1/subscribers", query_string={"email": text}, headers=headers)
        assert found.status_code == 200 and found.json["items"] == [], text
    found = client.get("/api/v1/subscribers?email=a1@news", headers=headers)
    assert [s["email"] for s in found.json["items"]] == ["a1@news.example"]
