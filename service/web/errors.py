"""Every error becomes a clear answer: JSON under /api, a friendly page elsewhere. Never a trace."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask.json.provider import DefaultJSONProvider
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed

from service.dispatch import BROKER_OUTAGES
from service.domain.errors import N_, DomainError, ErrorKind
from service.logs import redact
from service.web.l10n import gettext as _

log = logging.getLogger(__name__)

# Redis (rate limits, the task queue) being down is an outage to wait out, not a bug.
OUTAGES = BROKER_OUTAGES

# The one place a kind of failure becomes an HTTP status (RFC 9110 §15).
STATUS_FOR_KIND: dict[ErrorKind, int] = {
    ErrorKind.REFUSED: 400,
    ErrorKind.MALFORMED: 400,
    ErrorKind.INVALID: 422,
    ErrorKind.BAD_LINK: 400,
    ErrorKind.EXPIRED: 410,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.UNAVAILABLE: 503,
}


class MalformedRequest(DomainError):
    """A request whose body or headers could not be read (no use-case has run yet)."""

    code = "malformed_request"
    kind = ErrorKind.MALFORMED
    message = N_("The request could not be read.")


def status_of(error: DomainError) -> int:
    """The HTTP status that answers `error` (STATUS_FOR_KIND)."""
    return STATUS_FOR_KIND[error.kind]


def wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(status: int, code: str, message: str) -> tuple[Response | str, int]:
    if wants_json():
        return jsonify(error={"code": code, "message": message}), status
    return render_template("public/message.html", title=_title(status), message=message), status


def _title(status: int) -> str:
    if status == 429:
        return _("Too many attempts")
    if status in (400, 410, 413, 414, 415, 422, 431):
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
        414: ("uri_too_long", _("The address (URL) is too long.")),
        431: ("headers_too_large", _("The request's headers are too large.")),
        415: (
            "unsupported_media_type",
            _("Send the data as JSON (Content-Type: application/json)."),
        ),
        429: ("rate_limited", _("Too many attempts. Wait a little and try again.")),
    }
    return known.get(status, (error.name.lower().replace(" ", "_"), error.description or ""))


class JSONProvider(DefaultJSONProvider):
    """Request bodies that cannot be read one way only are invalid JSON (400), never a 500:
    a document nested too deeply to parse, or an object naming the same field twice (which
    value counts would depend on the parser, like a form with two `email` fields)."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        kwargs.setdefault("object_pairs_hook", _unique_fields)
        try:
            return super().loads(s, **kwargs)
        except RecursionError:
            raise ValueError("the JSON document is nested too deeply") from None


def _unique_fields(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise ValueError("a JSON object names the same field twice")
    return fields


def init_app(app: Flask) -> None:
    app.json = JSONProvider(app)

    @app.errorhandler(DomainError)
    def domain_error(error: DomainError) -> ResponseReturnValue:
        body, status = error_response(
            status_of(error), error.code, _(error.message, **error.params)
        )
        if status == 401:
            return body, status, {"WWW-Authenticate": 'Bearer realm="pressroom"'}
        return body, status

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> tuple[Response | str, int]:
        return error_response(
            400,
            "csrf_failed",
            _("The form has expired or came from another site. Reload the page and try again."),
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> ResponseReturnValue:
        code, message = _http_message(error)
        body, status = error_response(error.code or 500, code, message)
        headers: dict[str, str] = {}
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            headers["Allow"] = ", ".join(error.valid_methods)  # RFC 9110: a 405 names them
        return body, status, headers

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> ResponseReturnValue:
        if isinstance(error, HTTPException):
            return http_error(error)
        if isinstance(error, OUTAGES):
            log.error("Redis is unreachable: %s", error.__class__.__name__)
            body, status = error_response(
                503,
                "unavailable",
                _("The service is busy for a moment. Try again in a minute."),
            )
            return body, status, {"Retry-After": "60"}
        log.exception("unhandled error on %s %s", request.method, redact(request.path))
        internal = InternalServerError()
        return error_response(500, "internal_error", internal.description or "")
