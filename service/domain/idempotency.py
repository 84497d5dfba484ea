"""Idempotency keys for requests that create: the same key within 24 hours gives the first
answer again and creates nothing new (draft-ietf-httpapi-idempotency-key-header, §2 and §2.7).

A request with a key first claims it, in a transaction of its own committed before its work,
so that a second request with the key sees it in flight (409, draft §2.7). The request then
writes its answer into the key's row in the same transaction as what it creates: the key
holds an answer if and only if the work was committed. A request that fails gives its claim
back, and nothing of it stays. A claim whose request died (a killed process) lapses after
IN_FLIGHT; a late commit of that request then finds its claim taken and rolls back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from service.db import insert_for
from service.domain.errors import N_, DomainError, ErrorKind
from service.models import IdempotencyKey

KEPT_FOR = timedelta(hours=24)  # a key older than this is forgotten (and purged)
IN_FLIGHT = timedelta(minutes=2)  # a claim older than this, still unanswered, has lapsed


class KeyReused(DomainError):
    """draft §2.7: the same key with another request payload."""

    code = "idempotency_key_reused"
    kind = ErrorKind.INVALID
    message = N_(
        "This Idempotency-Key was already used for a different request. Use a new key for a "
        "new request."
    )


class KeyInFlight(DomainError):
    """draft §2.7: the first request with this key is still being processed."""

    code = "idempotency_key_in_flight"
    kind = ErrorKind.CONFLICT
    message = N_(
        "A request with this Idempotency-Key is still being processed. Try again in a moment."
    )


@dataclass(frozen=True)
class Answer:
    """The first answer given for a key: HTTP status, body (JSON text), Location if any."""

    status: int
    body: str
    location: str | None = None


@dataclass(frozen=True)
class Claim:
    """The right to do the work for a key; `owner` is this request's own mark."""

    owner: str


def claim(
    session: Session, *, scope: str, endpoint: str, key: str, fingerprint: str, now: datetime
) -> Claim | Answer:
    """Take the key for this request, or give the answer already stored for it.

    Commit the session before doing the work. Purges keys older than KEPT_FOR.
    Raises KeyReused (another fingerprint) or KeyInFlight (the first request still runs).
    """
    session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - KEPT_FOR))
    owner = uuid.uuid4().hex
    taken = session.scalar(  # RETURNING: the rowcount of ON CONFLICT is not portable
        insert_for(session, IdempotencyKey)
        .values(
            scope=scope,
            endpoint=endpoint,
            key=key,
            fingerprint=fingerprint,
            owner=owner,
            locked_at=now,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["scope", "endpoint", "key"])
        .returning(IdempotencyKey.id)
    )
    if taken is not None:
        return Claim(owner)
    row = session.scalars(
        select(IdempotencyKey)
        .where(
            IdempotencyKey.scope == scope,
            IdempotencyKey.endpoint == endpoint,
            IdempotencyKey.key == key,
        )
        .with_for_update()
    ).one()
    if row.fingerprint != fingerprint:
        raise KeyReused()
    if row.status is not None and row.body is not None:
        return Answer(row.status, row.body, row.location)
    if row.locked_at > now - IN_FLIGHT:
        raise KeyInFlight()
    lapsed = session.execute(  # its request died: this one takes over
        update(IdempotencyKey)
        .where(IdempotencyKey.id == row.id, IdempotencyKey.owner == row.owner)
        .values(owner=owner, locked_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not lapsed:
        raise KeyInFlight()
    return Claim(owner)


def stored_answer(
    session: Session, *, scope: str, endpoint: str, key: str, fingerprint: str, now: datetime
) -> Answer | None:
    """The answer already given for this key and this very request, if any (read only): a
    replay, which rate limits must not count as a new request."""
    row = session.scalars(
        select(IdempotencyKey).where(
            IdempotencyKey.scope == scope,
            IdempotencyKey.endpoint == endpoint,
            IdempotencyKey.key == key,
            IdempotencyKey.created_at >= now - KEPT_FOR,
        )
    ).one_or_none()
    if row is None or row.fingerprint != fingerprint or row.status is None or row.body is None:
        return None
    return Answer(row.status, row.body, row.location)


def answer(session: Session, claim: Claim, given: Answer) -> None:
    """Store the answer in the transaction that creates what it reports.

    Raises KeyInFlight when the claim lapsed and another request took the key: roll back.
    """
    stored = session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.owner == claim.owner, IdempotencyKey.status.is_(None))
        .values(status=given.status, body=given.body, location=given.location, owner=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not stored:
        raise KeyInFlight()


def give_back(session: Session, claim: Claim) -> None:
    """The request failed and created nothing: forget its claim, so that a retry may run."""
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.owner == claim.owner, IdempotencyKey.status.is_(None)
        )
    )
