"""Every error becomes a clear answer: JSON under /api, a friendly page elsewhere. Never a trace."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from service.domain.errors import DomainError

log = logging.getLogger(__name__)


def wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(status: int, code: str, message: str) -> tuple[Response | str, int]:
    if wants_json():
        return jsonify(error={"code": code, "message": message}), status
    return render_template("public/message.html", title=_title(status), message=message), status


def _title(status: int) -> str:
    if status == 429:
        return _("Too many attempts")
    if status in (400, 410, 413, 415, 422):
        return _("Something is not right")
    if status == 404:
        return _("Page not found")
    if status >= 500:
        return _("Something went wrong")
    return _("Sorry")


# Messages a reader sees, per HTTP status, for errors Werkzeug raises before our code runs.
def _http_message(error: HTTPException) -> tuple[str, str]:
    status = error.code or 500
    known = {
        400: ("bad_request", _("The request could not be understood.")),
        404: ("not_found", _("There is nothing at this address.")),
        405: ("method_not_allowed", _("That method is not allowed here.")),
        413: ("too_large", _("The request is too large.")),
        415: (
            "unsupported_media_type",
            _("Send the data as JSON (Content-Type: application/json)."),
        ),
        429: ("rate_limited", _("Too many attempts. Wait a little and try again.")),
    }
    return known.get(status, (error.name.lower().replace(" ", "_"), error.description or ""))


def init_app(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(error: DomainError) -> tuple[Response | str, int]:
        return error_response(error.status, error.code, _(error.message, **error.params))

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> tuple[Response | str, int]:
        return error_response(
            400,
            "csrf_failed",
            _("The form has expired or came from another site. Reload the page and try again."),
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[Response | str, int]:
        code, message = _http_message(error)
        return error_response(error.code or 500, code, message)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> tuple[Response | str, int]:
        if isinstance(error, HTTPException):
            return http_error(error)
        log.exception("unhandled error on %s %s", request.method, request.path)
        internal = InternalServerError()
        return error_response(500, "internal_error", internal.description or "")
