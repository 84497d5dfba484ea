"""gunicorn's gthread worker, answering gunicorn's own refusals in the API's error shape.

gunicorn.conf.py raises gunicorn's limits above the app's (service.web.request_limits), so
the app answers every request line or header up to them. Beyond them, and for a request it
cannot parse at all (a malformed request line, header or HTTP version: 400), gunicorn refuses
the request before any path is known, so JSON or a page cannot be chosen by path: this
answers with the API's error body ({"error": {"code", "message"}}, English), which a program
can read and a person can too, instead of gunicorn's HTML.
"""

from __future__ import annotations

import json
from typing import Any

from gunicorn import util
from gunicorn.http.errors import (
    InvalidHeader,
    InvalidHeaderName,
    InvalidHTTPVersion,
    InvalidRequestLine,
    InvalidRequestMethod,
    InvalidResponseHeader,
    InvalidResponseHeaderName,
    LimitRequestHeaders,
    LimitRequestLine,
    ObsoleteFolding,
)
from gunicorn.workers.gthread import ThreadWorker

# gunicorn's refusals of a request it could not read, as (status, reason, code, message); the
# codes and messages are the app's own for the same statuses (service/web/errors.py).
_REFUSALS: list[tuple[tuple[type[Exception], ...], int, str, str, str]] = [
    ((LimitRequestLine,), 414, "URI Too Long", "uri_too_long", "The address (URL) is too long."),
    (
        (LimitRequestHeaders,),
        431,
        "Request Header Fields Too Large",
        "headers_too_large",
        "The request's headers are too large.",
    ),
    (
        (
            InvalidRequestLine,
            InvalidRequestMethod,
            InvalidHTTPVersion,
            InvalidHeader,
            InvalidHeaderName,
            ObsoleteFolding,
        ),
        400,
        "Bad Request",
        "bad_request",
        "The request could not be understood.",
    ),
]
# A header the app tried to send is the app's fault: gunicorn's 500 stays.
_NOT_THE_CLIENTS = (InvalidResponseHeader, InvalidResponseHeaderName)


def error_response(status: int, reason: str, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 response holding the API's error body; the connection then closes."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class Worker(ThreadWorker):
    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        for kinds, status, reason, code, message in _REFUSALS:
            if isinstance(exc, kinds) and not isinstance(exc, _NOT_THE_CLIENTS):
                self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
                try:
                    util.write_nonblock(client, error_response(status, reason, code, message))
                except OSError:
                    self.log.debug("Failed to send error message.")
                return
        super().handle_error(req, client, addr, exc)
