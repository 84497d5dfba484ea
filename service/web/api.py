"""The JSON API (/api/v1). Errors are {"error": {"code", "message"}} with a 4xx status."""

from __future__ import annotations

import re
from typing import Any

from flask import Response, g, jsonify, request, url_for
from flask_babel import get_locale
from flask_smorest import Blueprint
from sqlalchemy.orm import Session
from werkzeug.exceptions import BadRequest, UnsupportedMediaType

from service import dispatch
from service.app_state import session_scope, settings
from service.db import MAX_ROW_ID, utcnow
from service.domain import (
    digests,
    releases,
    send_guards,
    subscriber_search,
    subscriptions,
    suppressions,
)
from service.domain.addresses import INVISIBLE_BMP, normalize_address, trim_address
from service.domain.consent_ledger import Origin
from service.domain.errors import N_, InvalidAddress, InvalidInput, NotFound
from service.extensions import accepted_language, csrf
from service.locales import API_LANGUAGE, PRIMARY_LANGUAGE
from service.models import (
    ConsentChannel,
    ConsentSource,
    Frequency,
    Release,
    ReleaseStatus,
    ReportKind,
    SubscriberStatus,
)
from service.sending import control
from service.web import openapi as doc
from service.web.api_auth import require_token
from service.web.errors import MalformedRequest
from service.web.idempotency import ANYONE, idempotent
from service.web.signup import (
    build_signup,
    record_signup,
)

bp = Blueprint("api", __name__, url_prefix="/api/v1", description="Pressroom API v1")
csrf.exempt(bp)  # JSON only: a cross-site form cannot send application/json without CORS

SUBSCRIPTION_FIELDS = frozenset({"email", "language", "topics", "frequency"})
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


@bp.after_app_request
def name_the_language(response: Response) -> Response:
    """Every API answer (errors from outside the blueprint too) says its language, and that
    it depends on Accept-Language, so a cache keeps the English and the bokmål apart
    (RFC 9110 §8.5, §12.5.5)."""
    if request.path.startswith("/api/"):
        response.vary.add("Accept-Language")
        response.content_language.add(str(get_locale() or API_LANGUAGE))
    return response


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
@bp.doc(
    summary="Subscribe an address (double opt-in)",
    description="The same answer whatever the address's state; a confirmation email follows.",
    requestBody=doc.json_body(doc.SubscriptionRequest),
    parameters=[doc.IDEMPOTENCY_KEY],
)
@bp.alt_response(202, schema=doc.SubscriptionAccepted, description="Check your inbox")
@bp.alt_response(400, schema=doc.Error, description="Malformed body or Idempotency-Key")
@bp.alt_response(409, schema=doc.Error, description="Same Idempotency-Key still in flight")
@bp.alt_response(422, schema=doc.Error, description="Invalid address, language or topics")
@bp.alt_response(429, schema=doc.Error, description="Too many signups")
def create_subscription() -> Response:
    body = json_object()
    unknown = sorted(set(body) - SUBSCRIPTION_FIELDS)
    if unknown:
        raise InvalidInput(N_("Unknown field(s): %(fields)s."), fields=", ".join(unknown)[:200])
    if "email" not in body:
        raise InvalidInput(N_("The field 'email' is required."))
    signup = build_signup(
        email=body["email"],
        language=_signup_language(body),
        topics=_signup_topics(body),
        source=ConsentSource.API,
        frequency=_signup_frequency(body),
    )
    with idempotent(ANYONE, body) as key:
        if key.replay is not None:
            return key.replay
        answered: list[Response] = []
        record_signup(
            signup,
            in_transaction=lambda session: answered.append(
                key.respond(session, {"status": "pending"}, 202)
            ),
        )
        return answered[0]


def _signup_language(body: dict[str, Any]) -> str:
    """As the schema says: nb or en; "" (what a forwarded form sends) or none means the reader's
    language as the request's Accept-Language names it, else the default (nb). Not the API's
    own answering language, which is English for a request that names none."""
    value = body.get("language", "")
    if value == "":
        return accepted_language(PRIMARY_LANGUAGE)
    return subscriptions.exact_language(value)


def _signup_frequency(body: dict[str, Any]) -> str:
    """As the schema says: immediately, daily or weekly, exactly; "" or none: immediately."""
    value = body.get("frequency", "")
    if not isinstance(value, str) or (value and value not in {f.value for f in Frequency}):
        raise digests.InvalidFrequency()
    return value


def _signup_topics(body: dict[str, Any]) -> list[str] | None:
    """As the schema says: a list of topic slugs; "" (a forwarded form) or none means all."""
    value = body.get("topics", "")
    if value == "":
        return None
    offered = settings().topics
    return subscriptions.topic_list(value, offered)


# --- Publisher calls ---------------------------------------------------------------------

RELEASE_BODY_LIMIT = 1024 * 1024
RELEASE_PAGE = doc.IntRange(default=50, low=1, high=200)
BEFORE = doc.IntRange(default=0, low=0, high=MAX_ROW_ID)
SUBSCRIBER_PAGE = doc.IntRange(default=100, low=1, high=1000)
AFTER = doc.IntRange(default=0, low=0, high=MAX_ROW_ID)


def release_answer(session: Session, release: Release) -> dict[str, Any]:
    counts = releases.delivery_counts(session, release.id)
    reported = send_guards.reported(session, release.id)
    base = settings().public_base_url
    return {
        **releases.release_state(release),
        "url": f"{base}/releases/{release.slug}",
        "delivery": {
            "state": release.status.value,
            "total": counts["total"],
            "sent": counts["sent"],
            "failed": counts["failed"],
            "pending": counts["pending"],
            "skipped": counts["skipped"],
            "at_once": counts["at_once"],
            "in_digests": counts["in_digests"],
            "digest_waiting": counts["held"],
            "bounced": reported.get(ReportKind.HARD_BOUNCE, 0),
            "complained": reported.get(ReportKind.COMPLAINT, 0),
            # Why the send stopped by itself (the mail server's reply, or a guard: too many
            # complaints or hard bounces), while it is paused.
            "pause_reason": (
                release.pause_reason if release.status is ReleaseStatus.PAUSED else None
            ),
        },
    }


@bp.post("/releases")
@bp.doc(
    summary="Write a release",
    security=doc.BEARER,
    requestBody=doc.json_body(doc.ReleaseRequest),
    parameters=[doc.IDEMPOTENCY_KEY],
)
@bp.alt_response(
    201,
    schema=doc.Release,
    description="Created; `publish: true` starts sending",
    headers=doc.CREATED_HEADERS,
)
@bp.alt_response(400, schema=doc.Error, description="Malformed body or Idempotency-Key")
@bp.alt_response(409, schema=doc.Error, description="Same Idempotency-Key still in flight")
@bp.alt_response(422, schema=doc.Error, description="Invalid field")
@require_token
def create_release() -> Response:
    request.max_content_length = RELEASE_BODY_LIMIT
    body = json_object()
    now = utcnow()
    draft = releases.parse_release(body, now=now, past_schedule=True)
    with idempotent(f"publisher:{g.publisher_id}", body) as key:
        if key.replay is not None:
            return key.replay
        with session_scope() as session:
            release = releases.create_release(session, draft, publisher_id=g.publisher_id, now=now)
            follow_up = control.FollowUp()
            if draft.publish:
                release, follow_up = control.publish(session, release.id, now=now)
            location = url_for("api.get_release", release_id=release.id)
            response = key.respond(session, release_answer(session, release), 201, location)
        follow_up.ring(dispatch.ring)
        return response


@bp.get("/releases")
@bp.doc(
    summary="Releases, newest first",
    security=doc.BEARER,
    parameters=[
        doc.int_query("limit", RELEASE_PAGE, "How many, newest first."),
        doc.int_query("before", BEFORE, "Only releases with a smaller id (next_before); 0: all."),
    ],
)
@bp.alt_response(200, schema=doc.ReleasePage, description="A page; next_before fetches more")
@require_token
def list_releases() -> Response:
    limit = _int_arg("limit", RELEASE_PAGE)
    before = _int_arg("before", BEFORE)
    with session_scope() as session:
        rows = releases.newest_releases(session, limit=limit, before=before)
        items = [release_answer(session, r) for r in rows]
    next_before = items[-1]["id"] if len(items) == limit else None
    return jsonify(items=items, next_before=next_before)


@bp.get("/releases/<int:release_id>")
@bp.doc(summary="A release with its delivery progress", security=doc.BEARER)
@bp.alt_response(200, schema=doc.Release, description="The release")
@bp.alt_response(404, schema=doc.Error, description="No such release")
@require_token
def get_release(release_id: int) -> Response:
    with session_scope() as session:
        return jsonify(release_answer(session, releases.get_press_release(session, release_id)))


@bp.patch("/releases/<int:release_id>")
@bp.doc(
    summary="Edit a release's text; never sends it again",
    security=doc.BEARER,
    requestBody=doc.json_body(doc.ReleaseEdit),
)
@bp.alt_response(200, schema=doc.Release, description="The edited release")
@bp.alt_response(409, schema=doc.Error, description="Not editable in its state")
@require_token
def edit_release(release_id: int) -> Response:
    request.max_content_length = RELEASE_BODY_LIMIT
    body = json_object()
    with session_scope() as session:
        release = releases.edit_release(session, release_id, body, now=utcnow(), past_schedule=True)
        return jsonify(release_answer(session, release))


@bp.post("/releases/<int:release_id>/<any(publish, pause, resume, cancel):action>")
@bp.doc(
    summary="Publish, pause, resume or cancel; publishing twice sends nothing twice",
    security=doc.BEARER,
)
@bp.alt_response(202, schema=doc.Release, description="The release in its new state")
@bp.alt_response(409, schema=doc.Error, description="Not possible in its state")
@require_token
def change_release(release_id: int, action: control.Action) -> tuple[Response, int]:
    with session_scope() as session:
        release, follow_up = control.change(
            session, release_id, action, now=utcnow(), chains=settings().send_chains
        )
        answer = release_answer(session, release)
    follow_up.ring(dispatch.ring)
    return jsonify(answer), 202


@bp.get("/subscribers")
@bp.doc(
    summary="Subscribers, by id",
    security=doc.BEARER,
    parameters=[
        {
            "in": "query",
            "name": "status",
            "schema": {"type": "string", "enum": [s.value for s in SubscriberStatus]},
        },
        {
            "in": "query",
            "name": "email",
            "schema": {
                "type": "string",
                "pattern": rf"^[{INVISIBLE_BMP}]*[^\x00-\x1f\x7f]*[{INVISIBLE_BMP}]*$",
            },
            "description": "Part of the address, any case (% and _ are themselves); empty "
            "matches every address. Invisible characters at the ends are ignored; no "
            "control characters within. A domain may be typed in Unicode (blåbær.no); "
            "answers hold addresses as stored, the domain in its IDNA form (xn--...).",
        },
        doc.int_query("limit", SUBSCRIBER_PAGE, "How many, by id."),
        doc.int_query("after", AFTER, "Only subscribers with a larger id (next_after); 0: all."),
    ],
)
@bp.alt_response(200, schema=doc.SubscriberPage, description="A page; next_after fetches more")
@require_token
def list_subscribers() -> Response:
    limit = _int_arg("limit", SUBSCRIBER_PAGE)
    after = _int_arg("after", AFTER)
    status = request.args.get("status")
    email = trim_address(request.args.get("email") or "") or None
    if email is not None and _CONTROL_CHARACTER.search(email):  # NUL: no PostgreSQL text
        raise InvalidInput(N_("An address holds no control characters."))
    if status is not None and status not in {s.value for s in SubscriberStatus}:
        raise InvalidInput(N_("Unknown status: %(status)s."), status=status[:40])
    with session_scope() as session:
        rows = subscriber_search.by_id(
            session,
            after=after,
            limit=limit,
            status=SubscriberStatus(status) if status else None,
            address_part=email[:254] if email else None,
        )
        items = [
            {
                "email": s.email,
                "status": s.status.value,
                "language": s.language,
                "topics": s.topics,
                "frequency": s.frequency.value,
                "created_at": s.created_at.isoformat(),
                "confirmed_at": s.confirmed_at.isoformat() if s.confirmed_at else None,
                "id": s.id,
            }
            for s in rows
        ]
    return jsonify(items=items, next_after=items[-1]["id"] if len(items) == limit else None)


@bp.delete("/subscribers/<path:email>")
@bp.doc(
    summary="Erase a subscriber; a hashed suppression entry stays",
    security=doc.BEARER,
    parameters=[{"in": "path", "name": "email", "required": True, "schema": doc.address_schema()}],
)
@bp.alt_response(204, description="Erased")
@bp.alt_response(404, schema=doc.Error, description="No such subscriber")
@require_token
def erase_subscriber(email: str) -> tuple[str, int]:
    address = normalize_address(email)
    with session_scope() as session:
        subscriber = subscriptions.find_by_email(session, address)
        if subscriber is None:
            raise NotFound(N_("There is no subscriber with this address."))
        subscriptions.erase(session, subscriber, now=utcnow(), origin=Origin(ConsentChannel.API))
    return "", 204


@bp.get("/suppressions")
@bp.doc(
    summary="The suppression list, by id",
    description="Addresses nothing is sent to: erased, bounced or complained, with the release "
    "that put them there.",
    security=doc.BEARER,
    parameters=[
        doc.int_query("limit", SUBSCRIBER_PAGE, "How many, by id."),
        doc.int_query("after", AFTER, "Only entries with a larger id (next_after); 0: all."),
    ],
)
@bp.alt_response(200, schema=doc.SuppressionPage, description="A page; next_after fetches more")
@require_token
def list_suppressions() -> Response:
    limit = _int_arg("limit", SUBSCRIBER_PAGE)
    after = _int_arg("after", AFTER)
    with session_scope() as session:
        entries = suppressions.page(session, after=after, limit=limit)
    items = [
        {
            "id": e.id,
            "email": e.email,
            "reason": e.reason.value,
            "created_at": e.created_at.isoformat(),
            "release_id": e.release_id,
        }
        for e in entries
    ]
    return jsonify(items=items, next_after=items[-1]["id"] if len(items) == limit else None)


@bp.delete("/suppressions/<path:email>")
@bp.doc(
    summary="Lift a suppression, saying why",
    description="A reader suppressed for bouncing is a confirmed reader again; one who "
    "complained stays unsubscribed; an erased address may subscribe or be imported again. "
    "The lift is kept with its note and who lifted it.",
    security=doc.BEARER,
    parameters=[
        {"in": "path", "name": "email", "required": True, "schema": doc.address_schema()},
        {
            "in": "query",
            "name": "note",
            "required": True,
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": suppressions.MAX_NOTE,
                "pattern": r"^[^\x00-\x1f\x7f-\x9f]*\S[^\x00-\x1f\x7f-\x9f]*$",
            },
            "description": "Why it is lifted (kept with the lift).",
        },
    ],
)
@bp.alt_response(204, description="Lifted")
@bp.alt_response(404, schema=doc.Error, description="Not on the suppression list")
@bp.alt_response(422, schema=doc.Error, description="No note")
@require_token
def lift_suppression(email: str) -> tuple[str, int]:
    try:
        address = normalize_address(email)
    except InvalidAddress:
        # Not an address: nothing by that name is on the list (an erased entry's email is null).
        raise NotFound(N_("This address is not on the suppression list.")) from None
    note = request.args.get("note") or ""
    if _CONTROL_CHARACTER.search(note) or re.search(r"[\x80-\x9f]", note):
        raise InvalidInput(N_("A note holds no control characters."))
    with session_scope() as session:
        suppressions.lift(session, address, note=note, by_publisher=g.publisher_id, now=utcnow())
    return "", 204


def _int_arg(name: str, bounds: doc.IntRange) -> int:
    """A whole-number query parameter, as its schema says: ASCII digits within the bounds; an
    empty value is not a number (leave the parameter out for the default)."""
    raw = request.args.get(name)
    if raw is None:
        return bounds.default
    if not (raw.isascii() and raw.isdigit()) or not bounds.low <= int(raw) <= bounds.high:
        raise InvalidInput(
            N_("%(name)s must be a whole number from %(low)s to %(high)s."),
            name=name,
            low=bounds.low,
            high=bounds.high,
        )
    return int(raw)
