"""Logins to the publisher's desk (Flask-Login): who is signed in, and where they may be sent.
The login form's views are desk.py; the API's bearer tokens are api_auth.py."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, jsonify, request, session
from flask_babel import gettext as _
from flask_login import LoginManager, UserMixin, current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from service.app_state import session_scope
from service.db import utcnow
from service.domain import publishers
from service.models import Publisher

login_manager = LoginManager()


@dataclass(frozen=True)
class DeskUser(UserMixin):
    """The signed-in publisher as the web layer sees it; the models know nothing of logins."""

    publisher_id: int
    email: str
    session_id: str

    def get_id(self) -> str:
        return self.session_id


def session_id_for(publisher: Publisher, nonce: str) -> str:
    # Bound to a desk session row (signing out deletes it, which ends the session even where its
    # cookie was copied) and to the password (a new password signs every old session out).
    fingerprint = hashlib.sha256(publisher.password_hash.encode()).hexdigest()[:16]
    return f"{publisher.id}:{fingerprint}:{nonce}"


def desk_user(publisher: Publisher, nonce: str) -> DeskUser:
    return DeskUser(publisher.id, publisher.email, session_id_for(publisher, nonce))


def new_sign_in(db: Session, publisher: Publisher) -> DeskUser:
    """A user for a fresh sign-in, with its desk session stored in the database (the caller
    commits). The session cookie starts anew (only the reader's language is kept): whatever
    was in it before the password was typed is not carried over."""
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language
    nonce = publishers.start_desk_session(
        db,
        publisher,
        now=utcnow(),
        lifetime=current_app.permanent_session_lifetime,
        user_agent=request.headers.get("User-Agent"),
    )
    return desk_user(publisher, nonce)


def _nonce_of(session_id: str) -> str:
    return session_id.rsplit(":", 1)[-1]


def end_session(user: DeskUser) -> None:
    """Sign out: the session's row goes, so no copy of its cookie signs anyone in again."""
    with session_scope() as db:
        publishers.end_desk_session(db, _nonce_of(user.session_id))


@login_manager.user_loader
def load_user(session_id: str) -> DeskUser | None:
    publisher_id, _, rest = session_id.partition(":")
    _, _, nonce = rest.partition(":")
    if not publisher_id.isdigit() or not nonce:
        return None
    with session_scope() as db:
        publisher = publishers.publisher_for_desk_session(
            db,
            int(publisher_id),
            nonce,
            now=utcnow(),
            lifetime=current_app.permanent_session_lifetime,
        )
        if publisher is None or session_id_for(publisher, nonce) != session_id:
            return None
        return desk_user(publisher, nonce)


def safe_next(target: str | None) -> str | None:
    """A path of this site, or None: `next` never leads anywhere else."""
    if not target or len(target) > 2000:
        return None
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(c) < 0x20 or c == "\x7f" for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "desk.login"
    login_manager.session_protection = "basic"
    login_manager.login_message = None  # the login page says what it is for


def guard(bp: Blueprint) -> None:
    """Every page of the blueprint needs a signed-in publisher and is never cached."""

    @bp.before_request
    def require_login() -> BaseResponse | tuple[BaseResponse, int] | None:
        if current_user.is_authenticated:
            return None
        if request.path.endswith(".json"):
            # What a script polls gets an answer it can read, not the login page.
            message = _("Sign in to the desk first.")
            return jsonify(error={"code": "unauthorized", "message": message}), 401
        return login_manager.unauthorized()

    @bp.after_request
    def private(response: Response) -> Response:
        response.headers["Cache-Control"] = "no-store"
        return response
