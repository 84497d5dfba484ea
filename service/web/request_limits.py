"""How long a request line and its headers may be, answered in the app's own error shape.

A request whose path and query, one header field, or number of header fields is beyond these
limits gets 414 or 431 from errors.py: JSON under /api/, a page elsewhere. gunicorn.conf.py
sets gunicorn's own limits above these, so every such request reaches the app instead of
gunicorn's HTML error; what is beyond even those is answered by service.gunicorn_worker.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Flask, request
from werkzeug.exceptions import RequestHeaderFieldsTooLarge, RequestURITooLarge

# gunicorn's defaults until gunicorn.conf.py raised them: limit_request_line (bytes of the
# request line), limit_request_field_size (bytes of one "Name: value" line), and
# limit_request_fields.
MAX_REQUEST_TARGET = 4094
MAX_HEADER_FIELD = 8190
MAX_HEADER_FIELDS = 100
_NOT_PREFIXED = {"CONTENT_TYPE": "Content-Type", "CONTENT_LENGTH": "Content-Length"}


def _request_target(environ: dict[str, object]) -> str:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if isinstance(raw, str):
        return raw
    query = environ.get("QUERY_STRING") or ""
    target = quote(str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", "")))
    return f"{target}?{query}" if query else target


def _header_lines(environ: dict[str, object]) -> list[int]:
    """The length of each header line as it came ("Name: value\\r\\n")."""
    lengths = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:]
        elif key in _NOT_PREFIXED:
            name = _NOT_PREFIXED[key]
        else:
            continue
        lengths.append(len(name) + 2 + len(str(value)) + 2)
    return lengths


def init_app(app: Flask) -> None:
    """Call first in create_app: the check runs before every other hook (limits, sessions)."""

    @app.before_request
    def refuse_oversized_requests() -> None:
        if len(_request_target(request.environ)) > MAX_REQUEST_TARGET:
            raise RequestURITooLarge()
        lines = _header_lines(request.environ)
        if len(lines) > MAX_HEADER_FIELDS or any(size > MAX_HEADER_FIELD for size in lines):
            raise RequestHeaderFieldsTooLarge()
