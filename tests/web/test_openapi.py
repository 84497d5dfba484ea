"""The OpenAPI document describes every API call, and documenting changed no answer."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def test_openapi_document_covers_every_api_route(app: Flask, client: FlaskClient) -> None:
    answer = client.get("/api/v1/openapi.json")
    assert answer.status_code == 200
    spec = answer.get_json()
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "Pressroom API"
    documented = {
        (path, method.upper())
        for path, operations in spec["paths"].items()
        for method in operations
        if method in HTTP_METHODS
    }
    routed = {
        (re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and rule.endpoint.startswith(("api.", "webhooks."))
        for method in rule.methods or ()
        if method.lower() in HTTP_METHODS
    }
    assert routed and documented == routed


def test_publisher_calls_need_a_bearer_token_and_bodies_have_schemas(client: FlaskClient) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    create = spec["paths"]["/api/v1/releases"]["post"]
    assert create["security"] == [{"bearer": []}]
    body = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    release_request = spec["components"]["schemas"][body.rsplit("/", 1)[1]]
    assert {"title", "language"} <= set(release_request["required"])
    subscribe = spec["paths"]["/api/v1/subscriptions"]["post"]
    assert "security" not in subscribe
    error = spec["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["$ref"].endswith("/ErrorDetail")


def test_errors_keep_their_contract_shape_after_documenting(client: FlaskClient) -> None:
    missing = client.get("/api/v1/releases/1")
    assert missing.status_code == 401
    assert missing.get_json()["error"]["code"] == "unauthorized"
    wrong_method = client.put("/api/v1/subscriptions")
    assert wrong_method.status_code == 405
    assert set(wrong_method.get_json()["error"]) == {"code", "message"}
    page = client.get("/no-such-page")
    assert page.status_code == 404 and page.content_type.startswith("text/html")
