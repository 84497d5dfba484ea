"""Schemathesis hooks for tests/test_api_contract.py (loaded through SCHEMATHESIS_HOOKS).

Two rules of the OpenAPI document depend on state, which no JSON Schema can say, so its
descriptions say them: `published_at` must be in the past (422 otherwise), and an
Idempotency-Key used before with another body is a 422. Generated bodies get a valid
`published_at` moved before now (and `publish_at` after it, so that the run does not publish
its releases), and valid keys are made unique to the request; a time or key that is not valid
at all (negative data) is left as the generator made it.

Two more rules of state: `corrects` must name a sent release (this run sends nothing, so a
valid id becomes null), and an `embargo_until` still to come refuses `publish: true` and an
earlier `publish_at` (a valid one is moved a day ahead, no later than publish_at, or into the
past beside `publish: true`).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis

from service.domain.errors import InvalidInput
from service.domain.releases import parse_datetime
from service.web.idempotency import HEADER, KEY_PATTERN

REUSED_KEY = "idempotency_key_reused"
STATE_RULES = ('"invalid_correction"', '"embargoed"')


def _valid_time(value: object) -> datetime | None:
    try:
        return parse_datetime(value, "time")
    except InvalidInput:
        return None


@schemathesis.hook
def map_body(context: schemathesis.HookContext, body: Any) -> Any:
    if not isinstance(body, dict):
        return body
    now = datetime.now(UTC)
    publish_at = _valid_time(body.get("publish_at"))
    if publish_at is not None and publish_at <= now + timedelta(minutes=10):
        body = {**body, "publish_at": (now + timedelta(days=30)).isoformat()}
        publish_at = now + timedelta(days=30)
    published_at = _valid_time(body.get("published_at"))
    if published_at is not None and published_at > now:
        body = {**body, "published_at": (now - timedelta(days=1)).isoformat()}
    if _valid_time(body.get("embargo_until")) is not None:
        embargo = (
            now - timedelta(days=1) if body.get("publish") is True else now + timedelta(days=1)
        )
        if publish_at is not None:
            embargo = min(embargo, publish_at)
        body = {**body, "embargo_until": embargo.isoformat()}
    corrects = body.get("corrects")
    if isinstance(corrects, int) and not isinstance(corrects, bool):
        body = {**body, "corrects": None}
    return body


@schemathesis.hook
def map_headers(context: schemathesis.HookContext, headers: Any) -> Any:
    if not isinstance(headers, dict) or not isinstance(headers.get(HEADER), str):
        return headers
    if not re.fullmatch(KEY_PATTERN, headers[HEADER]):
        return headers
    return {**headers, HEADER: uuid.uuid4().hex}


@schemathesis.hook
def filter_failure(
    context: schemathesis.HookContext, failure: Any, case: Any, response: Any
) -> bool:
    """The coverage phase sends its bodies without map_body: a 422 for a schema-valid body
    whose only fault is the side of now its time is on is the clock rule, not a violation."""
    if failure.code != "ST202" or response.status_code != 422:
        return True
    if REUSED_KEY in (response.text or ""):
        return False  # the key's rule: the same key was sent before with another body
    if any(code in (response.text or "") for code in STATE_RULES):
        return False  # no sent release to correct here; an embargo still to come
    body = case.body if isinstance(case.body, dict) else {}
    now = datetime.now(UTC)
    published_at = _valid_time(body.get("published_at"))
    return not (published_at is not None and published_at > now)
