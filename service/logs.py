"""Logging that never writes a secret: links carry signed tokens, so paths are redacted."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from gunicorn import glogging

_TOKEN_IN_PATH = re.compile(r"/(confirm|unsubscribe|preferences)/[^/?#\s]+")


def redact(text: str) -> str:
    """'/confirm/eyJ1Ijo...' -> '/confirm/<token>'."""
    return _TOKEN_IN_PATH.sub(r"/\1/<token>", text)


class RedactingGunicornLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's access log with the tokens in reader links replaced by '<token>'."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: timedelta) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "f"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        return atoms
