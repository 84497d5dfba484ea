"""Larger request bodies for the few desk views that take them (a release's text, an upload).

The app's limit is small (MAX_REQUEST_BYTES), and the CSRF check reads a form before its view
runs: so a view's own limit is set here, in a hook that runs before that check. Only for a
signed-in publisher: nobody else gets to make the app read megabytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, request
from flask_login import current_user

F = TypeVar("F", bound=Callable[..., Any])
_LIMIT = "pressroom_body_limit"


def allow_body(limit: int) -> Callable[[F], F]:
    """Let this view take a body (and form fields) of up to `limit` bytes."""

    def mark(view: F) -> F:
        setattr(view, _LIMIT, limit)
        return view

    return mark


def init_app(app: Flask) -> None:
    """Call before the CSRF extension is bound, so that this hook runs first."""

    @app.before_request
    def raise_limit_for_view() -> None:
        view = app.view_functions.get(request.endpoint or "")
        limit = getattr(view, _LIMIT, None)
        if limit and current_user.is_authenticated:
            request.max_content_length = limit
            request.max_form_memory_size = limit
