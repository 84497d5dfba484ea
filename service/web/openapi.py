"""The API's OpenAPI document (/api/v1/openapi.json), built by flask-smorest from the routes.

Requests are still parsed by the domain (its messages and error codes are the contract); the
schemas here describe them for integrators and client generators.
"""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api
from marshmallow import Schema, fields, validate

from service.config import TOPIC_PATTERN
from service.domain.releases import MAX_BODY, MAX_SUMMARY, MAX_TITLE
from service.domain.subscriptions import LANGUAGES
from service.models import ReleaseStatus, SubscriberStatus
from service.web.idempotency import HEADER, KEY_PATTERN

LANGUAGE = fields.String(validate=validate.OneOf(LANGUAGES))
TOPICS = fields.List(
    fields.String(validate=validate.Regexp(TOPIC_PATTERN)),
    metadata={"description": "Topic slugs; none means every topic."},
)


class ErrorDetail(Schema):
    code = fields.String(required=True, metadata={"example": "invalid_input"})
    message = fields.String(required=True)


class Error(Schema):
    error = fields.Nested(ErrorDetail, required=True)


class SubscriptionRequest(Schema):
    email = fields.Email(required=True)
    language = LANGUAGE
    topics = TOPICS


class SubscriptionAccepted(Schema):
    status = fields.String(required=True, metadata={"example": "pending"})


class ReleaseText(Schema):
    title = fields.String(required=True, validate=validate.Length(1, MAX_TITLE))
    summary = fields.String(validate=validate.Length(0, MAX_SUMMARY))
    body = fields.String(
        validate=validate.Length(0, MAX_BODY), metadata={"description": "Markdown."}
    )


class ReleaseRequest(ReleaseText):
    language = fields.String(required=True, validate=validate.OneOf(LANGUAGES))
    topics = TOPICS
    translations = fields.Dict(
        keys=fields.String(validate=validate.OneOf(LANGUAGES)),
        values=fields.Nested(ReleaseText),
        metadata={"description": "Other language versions, keyed by language."},
    )
    fallback_to_primary = fields.Boolean(
        metadata={"description": "Readers of a language without a version get the primary one."}
    )
    publish = fields.Boolean(metadata={"description": "Publish (and send) at once."})
    publish_at = fields.AwareDateTime(metadata={"description": "Publish later, from beat."})
    published_at = fields.AwareDateTime(
        metadata={"description": "Backdate; more than 2 days back is not emailed unless asked."}
    )
    email = fields.Boolean(metadata={"description": "false: archive only, no email."})


class ReleaseEdit(Schema):
    title = fields.String()
    summary = fields.String()
    body = fields.String()
    translations = fields.Dict(keys=fields.String(), values=fields.Nested(ReleaseText))
    topics = TOPICS
    publish_at = fields.AwareDateTime()


class DeliveryProgress(Schema):
    state = fields.String(validate=validate.OneOf([s.value for s in ReleaseStatus]))
    total = fields.Integer()
    sent = fields.Integer()
    failed = fields.Integer()
    pending = fields.Integer()
    skipped = fields.Integer()
    pause_reason = fields.String(
        allow_none=True,
        metadata={"description": "While paused by the mail server: its reply, else null."},
    )


class Release(ReleaseRequest):
    id = fields.Integer()
    slug = fields.String()
    status = fields.String()
    url = fields.Url()
    languages = fields.List(fields.String())
    delivery = fields.Nested(DeliveryProgress)


class ReleasePage(Schema):
    items = fields.List(fields.Nested(Release))
    next_before = fields.Integer(allow_none=True)


class Subscriber(Schema):
    id = fields.Integer()
    email = fields.Email()
    status = fields.String(validate=validate.OneOf([s.value for s in SubscriberStatus]))
    language = LANGUAGE
    topics = TOPICS
    created_at = fields.AwareDateTime()
    confirmed_at = fields.AwareDateTime(allow_none=True)


class SubscriberPage(Schema):
    items = fields.List(fields.Nested(Subscriber))
    next_after = fields.Integer(allow_none=True)


BEARER = [{"bearer": []}]
# The header parameter of the POSTs that create, registered once under components.
IDEMPOTENCY_KEY = "IdempotencyKey"


class DocumentedApi(Api):
    """flask-smorest documenting our error body, which errors.py produces for every error."""

    ERROR_SCHEMA = Error


def json_body(schema: type[Schema]) -> dict[str, object]:
    """An OpenAPI requestBody for a JSON document described by `schema`."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def init_app(app: Flask) -> Api:
    app.config.update(
        API_TITLE="Pressroom API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
    )
    api = DocumentedApi(
        app,
        spec_kwargs={
            "info": {
                "description": (
                    "Subscriptions for readers; releases and their delivery for publishers. "
                    'Errors are {"error": {"code", "message"}} with a 4xx status.'
                )
            }
        },
    )
    api.spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "description": "`flask token create`"}
    )
    for schema in (SubscriptionRequest, ReleaseRequest, ReleaseEdit):
        api.spec.components.schema(schema.__name__, schema=schema)
    api.spec.components.parameter(IDEMPOTENCY_KEY, "header", idempotency_key_parameter())
    return api


def idempotency_key_parameter() -> dict[str, object]:
    return {
        "name": HEADER,
        "required": False,
        "schema": {"type": "string", "pattern": KEY_PATTERN},
        "description": (
            "draft-ietf-httpapi-idempotency-key-header: a key of 1 to 255 characters, as an "
            'sf-string ("...") or a bare token. The same key (per caller and call) within 24 '
            "hours returns the first answer again (same status, body and Location) and creates "
            "nothing; with another body it is a 422, while the first request is still running "
            "a 409; a malformed key is a 400."
        ),
    }
