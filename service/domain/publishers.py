"""Press staff accounts, their desk sessions and their API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from service.domain.addresses import lookup_address, normalize_address
from service.domain.errors import N_, DomainError, ErrorKind, InvalidInput, NotFound
from service.models import ApiToken, DeskSession, Publisher

MIN_PASSWORD_LENGTH = 10
USER_AGENT_LENGTH = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
TOKEN_PREFIX = "prs_"
# A real hash to compare against when the account does not exist, so that timing does not tell.
_DUMMY_HASH = generate_password_hash("pressroom-dummy-password")


class PublisherExists(DomainError):
    code = "publisher_exists"
    kind = ErrorKind.CONFLICT
    message = N_("A publisher with this address exists already.")


def find_publisher(session: Session, email: str) -> Publisher | None:
    """The publisher with this address, normalized as a signup stores one (any case, ends
    trimmed, a Unicode domain in its IDNA form); None when there is none or it is no address."""
    address = lookup_address(email)
    if address is None:
        return None
    return session.scalar(select(Publisher).where(Publisher.email == address))


def create_publisher(
    session: Session, email: str, password: str, *, name: str | None = None, now: datetime
) -> Publisher:
    address = normalize_address(email)
    _check_password(password)
    if find_publisher(session, address) is not None:
        raise PublisherExists()
    publisher = Publisher(
        email=address, name=name, password_hash=generate_password_hash(password), created_at=now
    )
    session.add(publisher)
    session.flush()
    return publisher


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            N_("A password has at least %(count)s characters."), count=MIN_PASSWORD_LENGTH
        )


def set_password(session: Session, publisher: Publisher, password: str) -> None:
    """A new password; the desk signs out every session opened with the old one."""
    _check_password(password)
    publisher.password_hash = generate_password_hash(password)
    session.execute(delete(DeskSession).where(DeskSession.publisher_id == publisher.id))
    session.flush()


def authenticate(session: Session, email: str, password: str, *, now: datetime) -> Publisher | None:
    publisher = find_publisher(session, email)
    if publisher is None or not publisher.is_active:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(publisher.password_hash, password):
        return None
    publisher.last_login_at = now
    return publisher


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def start_desk_session(
    session: Session,
    publisher: Publisher,
    *,
    now: datetime,
    lifetime: timedelta,
    user_agent: str | None = None,
) -> str:
    """A new desk session; returns its nonce (for the cookie), which is stored only as its
    SHA-256. The publisher's expired sessions are cleared away on the way."""
    session.execute(
        delete(DeskSession).where(
            DeskSession.publisher_id == publisher.id, DeskSession.created_at <= now - lifetime
        )
    )
    nonce = secrets.token_urlsafe(32)
    session.add(
        DeskSession(
            publisher_id=publisher.id,
            nonce_hash=token_hash(nonce),
            created_at=now,
            user_agent=_CONTROL.sub("", user_agent)[:USER_AGENT_LENGTH] if user_agent else None,
        )
    )
    session.flush()
    return nonce


def publisher_for_desk_session(
    session: Session, publisher_id: int, nonce: str, *, now: datetime, lifetime: timedelta
) -> Publisher | None:
    """The active publisher whose live desk session this is, in one query; None when the
    session was ended, has expired, or belongs to someone else."""
    return session.scalar(
        select(Publisher)
        .join(DeskSession, DeskSession.publisher_id == Publisher.id)
        .where(
            Publisher.id == publisher_id,
            Publisher.is_active.is_(True),
            DeskSession.nonce_hash == token_hash(nonce),
            DeskSession.created_at > now - lifetime,
        )
    )


def live_desk_session(
    session: Session, publisher_id: int, nonce: str, *, now: datetime, lifetime: timedelta
) -> bool:
    return (
        publisher_for_desk_session(session, publisher_id, nonce, now=now, lifetime=lifetime)
        is not None
    )


def end_desk_session(session: Session, nonce: str) -> None:
    """Sign one session out, wherever its cookie may have been copied to."""
    session.execute(delete(DeskSession).where(DeskSession.nonce_hash == token_hash(nonce)))
    session.flush()


def issue_token(
    session: Session, publisher: Publisher, *, label: str | None = None, now: datetime
) -> str:
    """A new API token: returned once, stored only as its SHA-256."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            publisher_id=publisher.id,
            token_hash=token_hash(token),
            prefix=token[: len(TOKEN_PREFIX) + 6],
            label=label,
            created_at=now,
        )
    )
    session.flush()
    return token


def revoke_tokens(
    session: Session, publisher: Publisher, *, prefix: str | None = None, now: datetime
) -> int:
    """Revoke one token (by its shown prefix) or all of a publisher's tokens; returns how many."""
    query = select(ApiToken).where(
        ApiToken.publisher_id == publisher.id, ApiToken.revoked_at.is_(None)
    )
    if prefix:
        query = query.where(ApiToken.prefix == prefix[: len(TOKEN_PREFIX) + 6])
    tokens = session.scalars(query).all()
    if prefix and not tokens:
        raise NotFound(N_("No such token."))
    for token in tokens:
        token.revoked_at = now
    session.flush()
    return len(tokens)


def publisher_for_token(session: Session, token: str, *, now: datetime) -> Publisher | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == token_hash(token), ApiToken.revoked_at.is_(None)
        )
    )
    if row is None or not row.publisher.is_active:
        return None
    row.last_used_at = now
    return row.publisher
