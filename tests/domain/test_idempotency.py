"""Idempotency keys in the domain: claim, answer, give back, lapse (draft §2.7 cases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from service.domain import idempotency
from service.domain.idempotency import Answer, Claim, KeyInFlight, KeyReused

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def claim(session: Session, *, fingerprint: str = "f", now: datetime = NOW) -> Claim | Answer:
    return idempotency.claim(
        session, scope="publisher:1", endpoint="api.x", key="k", fingerprint=fingerprint, now=now
    )


def test_the_first_answer_is_given_again_and_only_for_the_same_payload(session: Session) -> None:
    first = claim(session)
    assert isinstance(first, Claim)
    with pytest.raises(KeyInFlight):
        claim(session)
    idempotency.answer(session, first, Answer(201, '{"id":1}', "/x/1"))
    assert claim(session) == Answer(201, '{"id":1}', "/x/1")
    with pytest.raises(KeyReused):
        claim(session, fingerprint="g")


def test_a_failed_request_gives_its_key_back(session: Session) -> None:
    first = claim(session)
    assert isinstance(first, Claim)
    idempotency.give_back(session, first)
    assert isinstance(claim(session), Claim)


def test_a_lapsed_claim_is_taken_over_and_its_late_answer_refused(session: Session) -> None:
    dead = claim(session)
    assert isinstance(dead, Claim)
    later = NOW + idempotency.IN_FLIGHT + timedelta(seconds=1)
    alive = claim(session, now=later)
    assert isinstance(alive, Claim) and alive != dead
    with pytest.raises(KeyInFlight):  # its transaction rolls back: the work is not done twice
        idempotency.answer(session, dead, Answer(201, "{}"))
    idempotency.answer(session, alive, Answer(201, "{}"))


def test_a_key_is_kept_a_day(session: Session) -> None:
    first = claim(session)
    assert isinstance(first, Claim)
    idempotency.answer(session, first, Answer(201, "{}"))
    assert isinstance(claim(session, now=NOW + timedelta(hours=23)), Answer)
    assert isinstance(claim(session, now=NOW + timedelta(hours=24, seconds=1)), Claim)
