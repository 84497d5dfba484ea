"""The API's OpenAPI 3.0.3 document (/api/v1/openapi.json): the contract integrators and
tests/test_api_contract.py (schemathesis) hold the API to.

Requests are parsed by the domain (its messages and error codes are the contract). The schemas
here say exactly what it accepts: every length, pattern, enum and bound it enforces, unknown
fields refused (additionalProperties: false), null only where null means something (the two
times: "not scheduled", "not backdated"), and every field an answer can hold as null marked
nullable. Two rules no JSON Schema can hold are in the descriptions: a time relative to now
(published_at in the past; a publish_at that has passed is taken, as due at once) and a
request body over its byte limit (413). Written as plain JSON Schema, because cross-field
rules (anyOf, not) have no marshmallow spelling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask_smorest import Api

from service.app_state import settings_of
from service.config import TOPIC_PATTERN, Settings
from service.db import MAX_ROW_ID
from service.domain.addresses import ADDRESS_PATTERN, MAX_ADDRESS_LENGTH
from service.domain.releases import DATE_TIME, MAX_BODY, MAX_DATE_TIME, MAX_SUMMARY, MAX_TITLE
from service.domain.subscriptions import MAX_TOPICS
from service.locales import LANGUAGES
from service.models import Frequency, ReleaseStatus, SubscriberStatus, SuppressionReason
from service.web.idempotency import HEADER, KEY_PATTERN

Schema = dict[str, Any]
BEARER = [{"bearer": []}]
# The header parameter of the POSTs that create, registered once under components.
IDEMPOTENCY_KEY = "IdempotencyKey"

# Characters the domain refuses in release text (releases._CONTROL), and in a one-line title
# also line breaks (releases._LINE_BREAK); SPACE is what str.strip() removes, so a title must
# hold one character that is neither.
# (Lone surrogates are refused too; a JSON Schema pattern cannot name them usefully.)
_NOT_IN_TEXT = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029"
_NOT_IN_LINE = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
_SPACE = r"\x09-\x0d\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


@dataclass(frozen=True)
class IntRange:
    """A whole-number query parameter: its bounds and the value when it is left out."""

    default: int
    low: int
    high: int


def int_query(name: str, bounds: IntRange, description: str) -> Schema:
    return {
        "in": "query",
        "name": name,
        "description": f"{description} Leave it out for {bounds.default}; empty is refused.",
        "schema": {
            "type": "integer",
            "minimum": bounds.low,
            "maximum": bounds.high,
            "default": bounds.default,
        },
    }


def json_body(schema: Schema) -> Schema:
    """An OpenAPI requestBody: a JSON document described by `schema` (one of the refs below)."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def address_schema() -> Schema:
    return {
        "type": "string",
        "format": "email",
        "maxLength": MAX_ADDRESS_LENGTH,
        "pattern": ADDRESS_PATTERN,
        "description": (
            "One plain address: no display name, no quoted part before the @ (letters beyond "
            "ASCII are fine there: RFC 6531), "
            "no special-use domain (.test, .invalid, .localhost, .local, .onion, .arpa). "
            "Internationalized domain names are accepted as well (IDNA). Spaces and invisible "
            "characters (Unicode Cf, Zs, Zl, Zp, tab, CR, LF) at either end are ignored."
        ),
    }


def _text(limit: int, description: str, *, title: bool = False) -> Schema:
    schema: Schema = {"type": "string", "maxLength": limit, "description": description}
    if title:
        schema["pattern"] = f"^[^{_NOT_IN_LINE}]*[^{_NOT_IN_LINE}{_SPACE}][^{_NOT_IN_LINE}]*$"
    else:
        # "Holds none of these" as `not` a search, rather than an anchored pattern over up to
        # MAX_BODY characters, which generators (schemathesis) take minutes to satisfy.
        schema["not"] = {"pattern": f"[{_NOT_IN_TEXT}]"}
    return schema


def _time(description: str) -> Schema:
    return {
        "type": "string",
        "format": "date-time",
        "maxLength": MAX_DATE_TIME,
        "pattern": f"^{DATE_TIME.pattern}$",
        "nullable": True,
        "description": description,
    }


def _topics(offered: tuple[str, ...]) -> Schema:
    item: Schema = {"type": "string", "pattern": TOPIC_PATTERN.pattern, "maxLength": 40}
    if offered:
        item["enum"] = list(offered)
    return {
        "type": "array",
        "items": item,
        "maxItems": MAX_TOPICS,
        "description": "Topic slugs, each counted once; none means every topic.",
    }


def _one_language_each(required: bool) -> Schema:
    """No translation in the release's own language (when the request names that language)."""
    branches: list[Schema] = [
        {
            "properties": {
                "language": {"enum": [language]},
                "translations": {"not": {"required": [language]}},
            },
            **({} if required else {"required": ["language"]}),
        }
        for language in LANGUAGES
    ]
    if not required:
        branches.append({"not": {"required": ["language"]}})
    return {"anyOf": branches}


def request_schemas(settings: Settings) -> dict[str, Schema]:
    language = {"type": "string", "enum": list(LANGUAGES)}
    text = {
        "title": _text(MAX_TITLE, "One line, not blank.", title=True),
        "summary": _text(MAX_SUMMARY, "Plain text; missing means empty."),
        "body": _text(MAX_BODY, "Markdown; missing means empty."),
    }
    translations = {
        "type": "object",
        "properties": {code: ref("ReleaseText") for code in LANGUAGES},
        "additionalProperties": False,
        "description": "The release in its other language, keyed by language.",
    }
    publish_at = _time(
        "Publish at this time, from beat; a time that has passed is due at once (published "
        "at the next sweep). null: not scheduled (on an edit: a scheduled release goes back "
        "to a draft)."
    )
    not_both = {
        "not": {
            "required": ["publish", "publish_at"],
            "properties": {"publish": {"enum": [True]}, "publish_at": {"type": "string"}},
        },
        "description": "publish: true and a publish_at time cannot go together.",
    }
    flags = {
        "fallback_to_primary": {
            "type": "boolean",
            "description": "Readers of a language without a version get the primary one.",
        },
        "email": {"type": "boolean", "description": "false: archive only, no email."},
    }
    embargo_until = _time(
        "Under embargo until this time: the release's page, feed entry and email stay closed "
        "and publishing is refused (409; 422 with publish: true, or a publish_at before it) "
        "until then. A time that has passed embargoes nothing. null: no embargo."
    )
    corrects = {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_ROW_ID,
        "nullable": True,
        "description": "The id of a sent release (status sent) this one corrects: emailed "
        "only to the readers who got that one, as a reply in its thread (In-Reply-To, "
        "References). A release that is not sent, or this one itself: 422. null: no "
        "correction.",
    }
    return {
        "SubscriptionRequest": {
            "type": "object",
            "properties": {
                "email": address_schema(),
                "language": {
                    "type": "string",
                    "enum": [*LANGUAGES, ""],
                    "description": "Empty or left out: the first of these the request's "
                    "Accept-Language asks for, else nb.",
                },
                "topics": {
                    "anyOf": [_topics(settings.topics), {"type": "string", "maxLength": 0}],
                    "description": "Topic slugs; empty or left out: every topic.",
                },
                "frequency": {
                    "type": "string",
                    "enum": [*(f.value for f in Frequency), ""],
                    "description": "Each release as it is sent, or a daily or weekly digest "
                    "(DIGEST_HOUR, DIGEST_WEEKDAY); empty or left out: immediately.",
                },
            },
            "required": ["email"],
            "additionalProperties": False,
        },
        "ReleaseText": {
            "type": "object",
            "properties": text,
            "required": ["title"],
            "additionalProperties": False,
        },
        "ReleaseRequest": {
            "type": "object",
            "properties": {
                **text,
                "language": language,
                "topics": _topics(()),
                "translations": translations,
                "publish": {"type": "boolean", "description": "Publish (and send) at once."},
                "publish_at": publish_at,
                "published_at": _time(
                    "Backdate: a time in the past (refused with 422 otherwise); more than 2 "
                    "days back is not emailed unless email is true. null: not backdated."
                ),
                "embargo_until": embargo_until,
                "corrects": corrects,
                **flags,
            },
            "required": ["title", "language"],
            "additionalProperties": False,
            "allOf": [not_both, _one_language_each(required=True)],
            "description": "At most 1 MiB of JSON (413 beyond).",
        },
        "ReleaseEdit": {
            "type": "object",
            "properties": {
                **text,
                "translations": {
                    **translations,
                    "description": "Replaces every translation; none in the stored language "
                    "(409) unless language moves it.",
                },
                "publish_at": publish_at,
                "language": {
                    **language,
                    "description": "While unsent (409 after): the primary language; a "
                    "version in that language becomes the primary text.",
                },
                "topics": {**_topics(()), "description": "While unsent (409 after)."},
                "embargo_until": {
                    **embargo_until,
                    "description": f"{embargo_until['description']} While unsent (409 after).",
                },
                "corrects": {
                    **corrects,
                    "description": f"{corrects['description']} While unsent (409 after).",
                },
                **{
                    name: {**flag, "description": f"{flag['description']} While unsent."}
                    for name, flag in flags.items()
                },
            },
            "additionalProperties": False,
            "allOf": [_one_language_each(required=False)],
            "description": "Only the fields sent change. At most 1 MiB of JSON (413 beyond).",
        },
    }


def answer_schemas() -> dict[str, Schema]:
    """What the API answers. Open (extra fields may be added), every field always present."""
    string, integer, boolean = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
    time = {"type": "string", "format": "date-time"}
    nullable_time = {**time, "nullable": True}
    text = {"title": string, "summary": string, "body": string}
    release_states = [state.value for state in ReleaseStatus]
    counts = ("total", "sent", "failed", "pending", "skipped")
    release = {
        "id": integer,
        "slug": string,
        "status": {"type": "string", "enum": release_states},
        **text,
        "language": string,
        "topics": {"type": "array", "items": string},
        "translations": {
            "type": "object",
            "additionalProperties": {"type": "object", "properties": text, "required": list(text)},
        },
        "fallback_to_primary": boolean,
        "email": boolean,
        "publish_at": {**nullable_time, "description": "null: not scheduled."},
        "published_at": {**nullable_time, "description": "null: not published yet."},
        "embargo_until": {**nullable_time, "description": "null: no embargo."},
        "corrects": {**integer, "nullable": True, "description": "null: no correction."},
        "languages": {"type": "array", "items": string},
        "url": {"type": "string", "format": "uri"},
        "delivery": ref("DeliveryProgress"),
    }
    subscriber = {
        "id": integer,
        "email": string,
        "status": {"type": "string", "enum": [status.value for status in SubscriberStatus]},
        "language": string,
        "topics": {"type": "array", "items": string},
        "frequency": {"type": "string", "enum": [f.value for f in Frequency]},
        "created_at": time,
        "confirmed_at": {**nullable_time, "description": "null: not confirmed."},
    }

    def page(item: str, cursor: str) -> Schema:
        return {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": ref(item)},
                cursor: {**integer, "nullable": True, "description": "null: the last page."},
            },
            "required": ["items", cursor],
        }

    return {
        "ErrorDetail": {
            "type": "object",
            "properties": {"code": {**string, "example": "invalid_input"}, "message": string},
            "required": ["code", "message"],
        },
        "Error": {
            "type": "object",
            "properties": {"error": ref("ErrorDetail")},
            "required": ["error"],
        },
        "SubscriptionAccepted": {
            "type": "object",
            "properties": {"status": {"type": "string", "enum": ["pending"]}},
            "required": ["status"],
        },
        "DeliveryProgress": {
            "type": "object",
            "properties": {
                "state": {"type": "string", "enum": release_states},
                **{key: {"type": "integer", "minimum": 0} for key in counts},
                "bounced": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Hard bounces: refused by our relay during the send, or "
                    "reported after it took the message (each delivery once).",
                },
                "complained": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Complaints (feedback loops, provider events).",
                },
                "at_once": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Readers sent it in its own email (of `sent`).",
                },
                "in_digests": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Daily and weekly readers: they get it, or got it, in a "
                    "digest rather than at once (those sent are in `sent` too).",
                },
                "digest_waiting": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Of those, readers whose digest has not gone out yet "
                    "(never in `total`).",
                },
                "pause_reason": {
                    "type": "string",
                    "nullable": True,
                    "description": "While the send paused itself: the mail server's reply, "
                    "or the guard's figures (complaints above COMPLAINT_RATE_LIMIT of those "
                    "delivered, hard bounces or refusals of the message above BOUNCE_RATE_LIMIT "
                    "of those attempted); "
                    "else null.",
                },
            },
            "required": [
                "state",
                *counts,
                "at_once",
                "in_digests",
                "digest_waiting",
                "bounced",
                "complained",
                "pause_reason",
            ],
        },
        "Suppression": {
            "type": "object",
            "properties": {
                "id": integer,
                "email": {
                    **string,
                    "nullable": True,
                    "description": "null for an erasure: only a hash of the address is kept.",
                },
                "reason": {"type": "string", "enum": [r.value for r in SuppressionReason]},
                "created_at": {"type": "string", "format": "date-time"},
                "release_id": {
                    **integer,
                    "nullable": True,
                    "description": "The release whose bounce or complaint it came from.",
                },
            },
            "required": ["id", "email", "reason", "created_at", "release_id"],
        },
        "SuppressionPage": page("Suppression", "next_after"),
        "WebhookTaken": {
            "type": "object",
            "properties": {
                "taken": {"type": "integer", "minimum": 0, "description": "Reports applied."},
                "repeats": {"type": "integer", "minimum": 0, "description": "Taken before."},
                "ignored": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Naming nobody on file: nothing kept.",
                },
                "subscription": {"type": "string", "enum": ["confirmed"]},
            },
            "required": ["taken", "repeats", "ignored"],
        },
        "Release": {"type": "object", "properties": release, "required": list(release)},
        "ReleasePage": page("Release", "next_before"),
        "Subscriber": {"type": "object", "properties": subscriber, "required": list(subscriber)},
        "SubscriberPage": page("Subscriber", "next_after"),
    }


# What every 201 answers besides its body (RFC 9110 §15.3.2, §10.2.2).
CREATED_HEADERS: dict[str, Schema] = {
    "Location": {
        "description": "The created resource (a path on this host, e.g. /api/v1/releases/42).",
        "schema": {"type": "string", "format": "uri-reference"},
        "required": True,
    }
}

# The components, as the routes name them.
Error = ref("Error")
SubscriptionRequest = ref("SubscriptionRequest")
SubscriptionAccepted = ref("SubscriptionAccepted")
ReleaseRequest = ref("ReleaseRequest")
ReleaseEdit = ref("ReleaseEdit")
Release = ref("Release")
ReleasePage = ref("ReleasePage")
SubscriberPage = ref("SubscriberPage")
WebhookTaken = ref("WebhookTaken")
SuppressionPage = ref("SuppressionPage")


class DocumentedApi(Api):
    """flask-smorest documenting our error body, which errors.py produces for every error."""

    ERROR_SCHEMA = Error


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
                    'Errors are {"error": {"code", "message"}} with a 4xx status (503 while '
                    "Redis is unreachable). Messages are in English unless the request's "
                    "Accept-Language asks for Norwegian (nb, no or nn: bokmål). Every 201 "
                    "names what it created in Location."
                )
            }
        },
    )
    api.spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "description": "`flask token create`"}
    )
    settings = settings_of(app)
    for name, schema in {**answer_schemas(), **request_schemas(settings)}.items():
        api.spec.components.schema(name, component=schema)
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
