"""The Idempotency-Key request header on POSTs that create
(draft-ietf-httpapi-idempotency-key-header): parse it, claim the key, replay the first answer.

    with idempotent(scope, payload) as key:
        if key.replay is not None:
            return key.replay
        with session_scope() as session:
            ...                                    # create
            response = key.respond(session, answer, 201, location)
        return response
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import http_sf
from flask import Response, current_app, request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service.app_state import session_scope
from service.db import utcnow
from service.domain import idempotency
from service.domain.errors import N_
from service.web.errors import MalformedRequest

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
ANYONE = "anyone"  # the scope of keys sent without credentials: the endpoint alone
# The two forms parse_key takes, as the OpenAPI document states them: an sf-string of 1 to 255
# characters, or a bare token (RFC 9110 tchar, with ":" and "/" as in an sf-token) of 1 to 255,
# which also takes what clients send unquoted, a UUID for one (Structured Fields would read its
# leading digits as a number and refuse it).
KEY_PATTERN = (
    r'^("([\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\]){1,255}"'  # an sf-string
    r"|[!#$%&'*+.^_`|~0-9A-Za-z:/-]{1,255})$"  # a bare token
)
_KEY = re.compile(KEY_PATTERN)


class InvalidKey(MalformedRequest):
    code = "invalid_idempotency_key"
    message = N_(
        "The Idempotency-Key header must be a string of 1 to 255 visible ASCII characters, "
        'quoted ("...") or as a bare token.'
    )


def parse_key(raw: str) -> str:
    """The key in an Idempotency-Key field value: an sf-string (RFC 8941 §3.3.3), as the draft
    (§2.1) defines it, or a bare token; exactly what KEY_PATTERN (in the OpenAPI document)
    allows. Raises InvalidKey (400) for anything else: empty, longer than MAX_KEY characters,
    with parameters, or with characters neither form allows."""
    if not _KEY.fullmatch(raw):
        raise InvalidKey()
    if not raw.startswith('"'):
        return raw
    item, _params = http_sf.parse(raw.encode("ascii"), tltype="item")  # undoes \" and \\
    return str(item)


def fingerprint(payload: Any) -> str:
    """SHA-256 of the request's JSON payload in canonical form (sorted keys, no spaces): the
    same document sent again, however spaced or ordered, is the same request (draft §2.4)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class RequestKey:
    """This request's key, if it sent one; `replay` is the first answer when there is one."""

    def __init__(
        self,
        claim: idempotency.Claim | None = None,
        replay: Response | None = None,
    ) -> None:
        self.claim = claim
        self.replay = replay
        self.answered = False

    def respond(
        self, session: Session, body: Any, status: int, location: str | None = None
    ) -> Response:
        """The JSON response; with a key, also stored as the key's answer in `session`'s
        transaction (the one that created what the answer reports)."""
        response = current_app.json.response(body)
        response.status_code = status
        if location is not None:
            response.headers["Location"] = location
        if self.claim is not None:
            given = idempotency.Answer(status, response.get_data(as_text=True), location)
            idempotency.answer(session, self.claim, given)
            self.answered = True
        return response


def replay(given: idempotency.Answer) -> Response:
    response = current_app.response_class(given.body, status=given.status)
    response.mimetype = "application/json"
    if given.location is not None:
        response.headers["Location"] = given.location
    response.headers["Idempotent-Replayed"] = "true"
    return response


def is_replay(scope: str) -> bool:
    """Whether this request repeats, with its Idempotency-Key, one already answered: it will be
    given the first answer again and do nothing, so a rate limit need not count it. False for
    anything unreadable (the view then answers it as usual)."""
    raw = request.headers.get(HEADER)
    if raw is None or not _KEY.fullmatch(raw):
        return False
    payload = request.get_json(silent=True)
    if payload is None:
        return False
    try:
        with session_scope() as session:
            return (
                idempotency.stored_answer(
                    session,
                    scope=scope,
                    endpoint=str(request.endpoint),
                    key=parse_key(raw),
                    fingerprint=fingerprint(payload),
                    now=utcnow(),
                )
                is not None
            )
    except (InvalidKey, SQLAlchemyError, ValueError):
        return False


@contextlib.contextmanager
def idempotent(scope: str, payload: Any) -> Iterator[RequestKey]:
    """Claim this request's Idempotency-Key for `scope` (the caller) and the endpoint; yields
    a RequestKey. A request without the header yields one that stores nothing.

    Raises InvalidKey (400), idempotency.KeyReused (422) or idempotency.KeyInFlight (409).
    """
    raw = request.headers.get(HEADER)
    if raw is None:
        yield RequestKey()
        return
    key = parse_key(raw)
    with session_scope() as session:
        got = idempotency.claim(
            session,
            scope=scope,
            endpoint=str(request.endpoint),
            key=key,
            fingerprint=fingerprint(payload),
            now=utcnow(),
        )
    if isinstance(got, idempotency.Answer):
        yield RequestKey(replay=replay(got))
        return
    handle = RequestKey(claim=got)
    try:
        yield handle
    except BaseException:
        _give_back(got)  # a no-op when the answer was committed after all
        raise
    if not handle.answered:
        _give_back(got)


def _give_back(claim: idempotency.Claim) -> None:
    try:
        with session_scope() as session:
            idempotency.give_back(session, claim)
    except SQLAlchemyError as error:  # the claim lapses after idempotency.IN_FLIGHT anyway
        log.warning("idempotency claim not given back: %s", error.__class__.__name__)
