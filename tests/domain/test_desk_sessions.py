"""Desk sessions live in the database: started, checked, ended, expired, and ended by a new
password."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.domain import publishers
from service.models import DeskSession, Publisher

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
LIFETIME = timedelta(days=31)
PASSWORD = "correct horse battery"


@pytest.fixture
def editor(session: Session) -> Publisher:
    return publishers.create_publisher(session, "editor@press.example", PASSWORD, now=NOW)


@pytest.fixture
def other(session: Session) -> Publisher:
    return publishers.create_publisher(session, "other@press.example", PASSWORD, now=NOW)


def start(session: Session, publisher: Publisher, now: datetime = NOW) -> str:
    return publishers.start_desk_session(session, publisher, now=now, lifetime=LIFETIME)


def live(session: Session, publisher: Publisher, nonce: str, now: datetime = NOW) -> bool:
    return publishers.live_desk_session(session, publisher.id, nonce, now=now, lifetime=LIFETIME)


def rows(session: Session) -> list[DeskSession]:
    return list(session.scalars(select(DeskSession).order_by(DeskSession.id)))


def test_a_started_session_is_live_and_stored_only_as_a_hash(
    session: Session, editor: Publisher
) -> None:
    nonce = start(session, editor)
    assert live(session, editor, nonce)
    (row,) = rows(session)
    assert row.publisher_id == editor.id and row.created_at == NOW
    assert row.nonce_hash == hashlib.sha256(nonce.encode()).hexdigest()
    assert nonce not in row.nonce_hash


def test_an_unknown_nonce_or_another_publisher_is_not_live(
    session: Session, editor: Publisher, other: Publisher
) -> None:
    nonce = start(session, editor)
    assert not live(session, editor, nonce + "x")
    assert not live(session, editor, "")
    assert not live(session, other, nonce)


def test_a_session_is_live_for_its_lifetime_and_no_longer(
    session: Session, editor: Publisher
) -> None:
    nonce = start(session, editor)
    assert live(session, editor, nonce, now=NOW + LIFETIME - timedelta(seconds=1))
    assert not live(session, editor, nonce, now=NOW + LIFETIME)


def test_ending_a_session_leaves_the_others_live(
    session: Session, editor: Publisher, other: Publisher
) -> None:
    first, second, theirs = start(session, editor), start(session, editor), start(session, other)
    publishers.end_desk_session(session, first)
    assert not live(session, editor, first)
    assert live(session, editor, second)
    assert live(session, other, theirs)
    publishers.end_desk_session(session, first)  # twice is harmless


def test_a_new_sign_in_clears_away_only_that_publishers_expired_sessions(
    session: Session, editor: Publisher, other: Publisher
) -> None:
    old = start(session, editor)
    theirs_old = start(session, other)
    recent = start(session, editor, now=NOW + timedelta(days=20))
    later = NOW + LIFETIME + timedelta(days=1)
    fresh = start(session, editor, now=later)
    left = {row.nonce_hash for row in rows(session)}
    assert left == {publishers.token_hash(n) for n in (theirs_old, recent, fresh)}
    assert not live(session, editor, old, now=later)
    assert live(session, editor, recent, now=later)


def test_a_new_password_ends_every_session_of_that_publisher(
    session: Session, editor: Publisher, other: Publisher
) -> None:
    mine = [start(session, editor), start(session, editor)]
    theirs = start(session, other)
    publishers.set_password(session, editor, "another long password")
    assert not any(live(session, editor, nonce) for nonce in mine)
    assert live(session, other, theirs)


def test_a_deactivated_publisher_has_no_live_session(session: Session, editor: Publisher) -> None:
    nonce = start(session, editor)
    editor.is_active = False
    session.flush()
    assert not live(session, editor, nonce)


def test_the_user_agent_is_kept_short(session: Session, editor: Publisher) -> None:
    publishers.start_desk_session(
        session, editor, now=NOW, lifetime=LIFETIME, user_agent="Mozilla/5.0 " + "x" * 500
    )
    publishers.start_desk_session(session, editor, now=NOW, lifetime=LIFETIME, user_agent="")
    first, second = rows(session)
    assert first.user_agent is not None and len(first.user_agent) == 200
    assert first.user_agent.startswith("Mozilla/5.0 ")
    assert second.user_agent is None
