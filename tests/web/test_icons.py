"""The site's icon: named by every page, and at /favicon.ico for whatever asks without a page."""

from __future__ import annotations

import re

from flask.testing import FlaskClient


def test_favicon_ico_is_an_icon(client: FlaskClient) -> None:
    answer = client.get("/favicon.ico")
    assert answer.status_code == 200
    assert answer.mimetype == "image/vnd.microsoft.icon"
    assert answer.data[:4] == b"\x00\x00\x01\x00"  # an ICO file's header
    assert "max-age" in answer.headers["Cache-Control"]


def test_every_page_names_its_icons_and_they_answer(client: FlaskClient) -> None:
    for path in ("/", "/admin/login", "/releases/no-such-release"):
        page = client.get(path).text
        icons = re.findall(r'<link rel="icon" href="([^"]+)"', page)
        assert "/favicon.ico" in icons and "/static/favicon.svg" in icons, path
    svg = client.get("/static/favicon.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
