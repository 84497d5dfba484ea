"""Flask extensions, created once and bound to each app in create_app."""

from __future__ import annotations

from flask import request
from flask_babel import Babel
from flask_migrate import Migrate
from flask_wtf import CSRFProtect

from service.locales import API_LANGUAGE, LANGUAGES, NORWEGIAN_TAGS, PRIMARY_LANGUAGE


def client_ip() -> str:
    return request.remote_addr or "unknown"


def accepted_language(default: str) -> str:
    """The first of LANGUAGES the request's Accept-Language (RFC 9110 §12.5.4) asks for, by
    quality (a q=0 range is a refusal, `*` names none of ours in particular); `default` when
    none does. Only the primary subtag counts: "nb-NO" is nb, "en-GB" is en."""
    ranges = [(value, quality) for value, quality in request.accept_languages if quality > 0]
    for value, _quality in sorted(ranges, key=lambda pair: -pair[1]):
        base = value.lower().replace("_", "-").split("-")[0]
        if base in NORWEGIAN_TAGS:
            return "nb"
        if base in LANGUAGES:
            return base
    return default


def select_locale() -> str:
    """Pages: `?lang=` wins, then the language remembered in the session, then the browser's
    languages (Norwegian in any form means bokmål), else bokmål. The API (/api/): English
    unless Accept-Language asks for bokmål; no session or `?lang=`, as curl sends neither."""
    if request.path.startswith("/api/"):
        return accepted_language(API_LANGUAGE)
    from flask import session

    asked = request.args.get("lang", "").strip().lower()
    if asked in LANGUAGES:
        session["lang"] = asked
        return asked
    remembered = session.get("lang")
    if remembered in LANGUAGES:
        return str(remembered)
    return accepted_language(PRIMARY_LANGUAGE)


csrf = CSRFProtect()
babel = Babel()
migrate = Migrate()
