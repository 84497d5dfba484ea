"""Every request's id, in its log lines and its answer: the `X-Request-ID` a proxy or a client
sent, when it is a plain token, else a new one (the header's convention, e.g. Heroku's and
nginx's $request_id)."""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, request

from service import logs

HEADER = "X-Request-ID"
_PLAIN = re.compile(r"[A-Za-z0-9._:-]{8,128}")  # nothing a log reader could be fooled by


def init_app(app: Flask) -> None:
    @app.before_request
    def take_request_id() -> None:
        sent = request.headers.get(HEADER, "")
        g.request_id = sent if _PLAIN.fullmatch(sent) else uuid.uuid4().hex
        logs.clear()
        logs.bind(request_id=g.request_id)

    @app.after_request
    def give_request_id(response: Response) -> Response:
        if "request_id" in g:
            response.headers[HEADER] = g.request_id
        return response

    @app.teardown_request
    def forget_request_id(_error: BaseException | None) -> None:
        logs.clear()
