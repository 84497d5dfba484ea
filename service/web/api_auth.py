"""Who calls the publisher API: its bearer tokens (RFC 6750), checked before each /api/v1 view
that needs one. The desk's password logins are desk_login.py."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

from service.app_state import session_scope
from service.db import utcnow
from service.domain import publishers
from service.domain.errors import N_, DomainError, ErrorKind

F = TypeVar("F", bound=Callable[..., Any])


class Unauthorized(DomainError):
    code = "unauthorized"
    kind = ErrorKind.UNAUTHENTICATED
    message = N_("A valid API token is needed: send 'Authorization: Bearer <token>'.")


def require_token(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized()
        with session_scope() as session:
            publisher = publishers.publisher_for_token(session, token.strip(), now=utcnow())
            if publisher is None:
                raise Unauthorized()
            g.publisher_id = publisher.id
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
