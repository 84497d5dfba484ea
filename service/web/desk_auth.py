"""Logins to the publisher's desk (Flask-Login): who is signed in, and where they may be sent."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis
from flask import Blueprint, Flask, Response, current_app, jsonify, request, session
from flask_babel import gettext as _
from flask_login import LoginManager, UserMixin, current_user
from werkzeug.wrappers import Response as BaseResponse

from service.db import session_scope
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
    # Bound to the password (a new password signs every old session out) and to a random
    # nonce per sign-in (signing out ends that session, even where its cookie was copied).
    fingerprint = hashlib.sha256(publisher.password_hash.encode()).hexdigest()[:16]
    return f"{publisher.id}:{fingerprint}:{nonce}"


def desk_user(publisher: Publisher, nonce: str) -> DeskUser:
    return DeskUser(publisher.id, publisher.email, session_id_for(publisher, nonce))


def new_sign_in(publisher: Publisher) -> DeskUser:
    """A user for a fresh sign-in. The session cookie starts anew (only the reader's language
    is kept): whatever was in it before the password was typed is not carried over."""
    language = session.get("lang")
    session.clear()
    if language:
        session["lang"] = language
    return desk_user(publisher, secrets.token_urlsafe(12))


def _signed_out_key(nonce: str) -> str:
    return f"pressroom:desk-signed-out:{nonce}"


def _redis() -> redis.Redis:
    client = current_app.extensions.get("pressroom.redis")
    if client is None:
        client = redis.Redis.from_url(current_app.extensions["pressroom.redis_url"])
        current_app.extensions["pressroom.redis"] = client
    return client


def end_session(user: DeskUser) -> None:
    """Remember the signed-out session for as long as its cookie could still be presented."""
    nonce = user.session_id.rsplit(":", 1)[-1]
    lifetime = int(current_app.permanent_session_lifetime.total_seconds())
    _redis().set(_signed_out_key(nonce), 1, ex=lifetime)


@login_manager.user_loader
def load_user(session_id: str) -> DeskUser | None:
    publisher_id, _, rest = session_id.partition(":")
    _, _, nonce = rest.partition(":")
    if not publisher_id.isdigit() or not nonce:
        return None
    if _redis().exists(_signed_out_key(nonce)):
        return None
    with session_scope() as db:
        publisher = db.get(Publisher, int(publisher_id))
        if publisher is None or not publisher.is_active:
            return None
        if session_id_for(publisher, nonce) != session_id:
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
