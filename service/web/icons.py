"""The site's icon at /favicon.ico, where browsers, feed readers and bookmarks look for it
without reading a page (pages name static/favicon.svg and this in <link rel="icon">).

static/favicon.ico holds static/favicon.svg drawn at 16, 32 and 48 px (PNG images in an ICO,
rendered by Chromium); draw it again from the SVG when the SVG changes."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, send_from_directory

bp = Blueprint("icons", __name__)

ICON_MAX_AGE = 7 * 24 * 3600  # seconds; the icon seldom changes


@bp.get("/favicon.ico")
def favicon() -> Response:
    assert current_app.static_folder is not None
    return send_from_directory(
        current_app.static_folder,
        "favicon.ico",
        mimetype="image/vnd.microsoft.icon",
        max_age=ICON_MAX_AGE,
    )
