"""The JSON API (/api/v1). Errors are {"error": {"code", "message"}} with a 4xx status."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from service.domain.errors import N_, InvalidInput, MalformedRequest
from service.extensions import csrf
from service.models import ConsentSource
from service.web.signup import (
    build_signup,
    record_signup,
)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)  # JSON only: a cross-site form cannot send application/json without CORS

SUBSCRIPTION_FIELDS = frozenset({"email", "language", "topics"})


def json_object() -> dict[str, Any]:
    if not request.is_json:
        raise UnsupportedMediaType()
    try:
        body = request.get_json()
    except BadRequest:
        raise MalformedRequest(N_("The body is not valid JSON.")) from None
    if not isinstance(body, dict):
        raise MalformedRequest(N_("The body must be a JSON object."))
    return body


@bp.post("/subscriptions")
def create_subscription() -> tuple[Response, int]:
    body = json_object()
    unknown = sorted(set(body) - SUBSCRIPTION_FIELDS)
    if unknown:
        raise InvalidInput(N_("Unknown field(s): %(fields)s."), fields=", ".join(unknown)[:200])
    if "email" not in body:
        raise InvalidInput(N_("The field 'email' is required."))
    record_signup(
        build_signup(
            email=body["email"],
            language=body.get("language"),
            topics=body.get("topics"),
            source=ConsentSource.API,
        )
    )
    return jsonify(status="pending"), 202
