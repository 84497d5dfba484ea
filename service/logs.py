"""Logging that never writes a secret, as one JSON object per line in production.

Every process (gunicorn, the `flask` commands, Celery's worker and beat) routes the standard
library's loggers (ours, Celery's, gunicorn's, SQLAlchemy's) through structlog's
ProcessorFormatter to stderr: `LOG_FORMAT=json` (the default) writes one JSON object a line
with `timestamp` (UTC, ISO 8601), `level`, `logger`, `event`, and whatever the context holds
(`request_id`, `task_id`, `task`, `release_id`, `subscriber_uid`); `LOG_FORMAT=console`
(`make run`) writes readable lines of the same.

Whatever a line holds goes through `redact` first: signed tokens in reader links, email
addresses and the credentials in a URL are replaced, so that a refusal quoting an address or
an error quoting a database URL logs neither.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

LOG_FORMATS = ("json", "console")

_TOKEN_IN_PATH = re.compile(r"/(confirm|unsubscribe|preferences)/[^/?#\s\"']+")
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s\"']+@")
# Anything shaped like local@domain.tld, the local part as generous as RFC 5322 and 6531 are.
_ADDRESS = re.compile(r"[^\s<>\"'(),;:@\[\]]+@[^\s<>\"'(),;:@\[\]]+\.[^\s<>\"'(),;:@\[\]]+")


def redact(text: str) -> str:
    """'/confirm/eyJ1Ijo...' -> '/confirm/<token>'; 'kari@mail.example' -> '<address>';
    'postgresql://user:secret@db/x' -> 'postgresql://<credentials>@db/x'."""
    text = _TOKEN_IN_PATH.sub(r"/\1/<token>", text)
    text = _URL_CREDENTIALS.sub("<credentials>@", text)
    return _ADDRESS.sub("<address>", text)


def _redact_values(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact(value)
    return event


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.ExtraAdder(),
]


def formatter(log_format: str) -> logging.Formatter:
    """A logging formatter writing `log_format` (LOG_FORMATS), redacted."""
    rendering: list[Any]
    if log_format == "json":
        rendering = [
            structlog.processors.dict_tracebacks,
            _redact_values,
            structlog.processors.JSONRenderer(),
        ]
    else:
        rendering = [_redact_values, structlog.dev.ConsoleRenderer(colors=False)]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
    )


def configure(log_format: str, *, level: int = logging.INFO) -> None:
    """Send every log record to stderr in `log_format` (LOG_FORMATS); replaces the root
    logger's handlers, so call it once, when a process starts."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # a library's warning is a log line too, not stray text
    for noisy in ("werkzeug",):  # its request lines hold paths: gunicorn's access log has them
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    _configured.append(log_format)


_configured: list[str] = []


def configured() -> bool:
    """Whether this process has set up its logging (configure)."""
    return bool(_configured)


def bind(**values: Any) -> None:
    """Add to what every log line of this thread (a request, a task) carries."""
    structlog.contextvars.bind_contextvars(**values)


def clear() -> None:
    structlog.contextvars.clear_contextvars()
