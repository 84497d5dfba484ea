"""Flask extensions, created once and bound to each app in create_app."""

from __future__ import annotations

from flask import request
from flask_babel import Babel
from flask_migrate import Migrate
from flask_wtf import CSRFProtect

from service.domain.subscriptions import DEFAULT_LANGUAGE, LANGUAGES


def client_ip() -> str:
    return request.remote_addr or "unknown"


def select_locale() -> str:
    """`?lang=` wins, then the browser's languages (Norwegian in any form means bokmål)."""
    from flask import session

    asked = request.args.get("lang", "").strip().lower()
    if asked in LANGUAGES:
        session["lang"] = asked
        return asked
    remembered = session.get("lang")
    if remembered in LANGUAGES:
        return str(remembered)
    for value, _quality in request.accept_languages:
        base = value.lower().replace("_", "-").split("-")[0]
        if base in ("nb", "no", "nn"):
            return "nb"
        if base in LANGUAGES:
            return base
    return DEFAULT_LANGUAGE


csrf = CSRFProtect()
babel = Babel()
migrate = Migrate()
