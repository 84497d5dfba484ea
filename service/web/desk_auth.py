"""Logins to the publisher's desk (Flask-Login): who is signed in, and where they may be sent."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Flask
from flask_login import LoginManager, UserMixin

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


def session_id_for(publisher: Publisher) -> str:
    # Bound to the password: a new password signs every old session out.
    fingerprint = hashlib.sha256(publisher.password_hash.encode()).hexdigest()[:16]
    return f"{publisher.id}:{fingerprint}"


def desk_user(publisher: Publisher) -> DeskUser:
    return DeskUser(publisher.id, publisher.email, session_id_for(publisher))


@login_manager.user_loader
def load_user(session_id: str) -> DeskUser | None:
    publisher_id, _, _ = session_id.partition(":")
    if not publisher_id.isdigit():
        return None
    with session_scope() as session:
        publisher = session.get(Publisher, int(publisher_id))
        if publisher is None or not publisher.is_active:
            return None
        if session_id_for(publisher) != session_id:
            return None
        return desk_user(publisher)


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
