"""URL converters: numbers in paths are ASCII digits only.

Werkzeug's `int` converter matches `\\d+`, which in Python takes any Unicode decimal digit, so
`/api/v1/releases/١` (ARABIC-INDIC DIGIT ONE) named release 1 while the same digit in a query
parameter was refused. One spelling per resource: anything else is a 404.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter


class AsciiIntegerConverter(IntegerConverter):
    regex = r"[0-9]+"


def init_app(app: Flask) -> None:
    """Call before any blueprint is registered."""
    app.url_map.converters["int"] = AsciiIntegerConverter
