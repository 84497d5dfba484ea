"""gunicorn's logger class (gunicorn.conf.py's logger_class): its error and access logs in the
app's log format (service/logs.py: one JSON object a line, unless LOG_FORMAT=console), with
the tokens in reader links, addresses and credentials redacted."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from gunicorn import glogging

from service import logs


class RedactingGunicornLogger(glogging.Logger):  # type: ignore[misc]
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        # Read here: the master logs before any app (and its settings) is loaded.
        log_format = os.environ.get("LOG_FORMAT", "json").strip().lower()
        formatter = logs.formatter(log_format if log_format in logs.LOG_FORMATS else "json")
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                handler.setFormatter(formatter)

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: timedelta) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "f"):
            if isinstance(atoms.get(key), str):
                atoms[key] = logs.redact(atoms[key])
        return atoms
