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
import structlog.tracebacks

LOG_FORMATS = ("json", "console")

_TOKEN_IN_PATH = re.compile(r"/(confirm|unsubscribe|preferences)/[^/?#\s\"']+")
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s\"']{1,256}@")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")
# Shaped like local@domain.tld (or local%40domain, as in a query string): the local part as
# generous as RFC 5322 and 6531 are, but at most 64 characters (RFC 5321 §4.5.3.1.1), which
# also keeps the search linear in a long header.
_NOT_IN = r"[^\s<>\"'(),;:@%\[\]/?=&#]"
_ADDRESS = re.compile(rf"{_NOT_IN}{{1,64}}(?:@|%40){_NOT_IN}{{1,253}}\.{_NOT_IN}{{1,63}}")


def redact(text: str) -> str:
    """'/confirm/eyJ1Ijo...' -> '/confirm/<token>'; 'kari@mail.example' -> '<address>';
    'postgresql://user:secret@db/x' -> 'postgresql://<credentials>@db/x';
    'Bearer abc' -> 'Bearer <token>'."""
    if "/" in text:
        text = _TOKEN_IN_PATH.sub(r"/\1/<token>", text)
        text = _URL_CREDENTIALS.sub("<credentials>@", text)
    if "earer" in text or "EARER" in text:
        text = _BEARER.sub(r"\1 <token>", text)
    if "@" in text or "%40" in text:
        text = _ADDRESS.sub("<address>", text)
    return text


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return value


def _redact_values(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Every string in the line, at any depth (a traceback's frames, Celery's extras)."""
    return {key: _redacted(value) for key, value in event.items()}


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
        # Frames without their local variables: those hold tokens, passwords and addresses.
        tracebacks = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        rendering = [
            structlog.processors.ExceptionRenderer(tracebacks),
            _redact_values,
            structlog.processors.JSONRenderer(),
        ]
    else:
        rendering = [
            structlog.processors.format_exc_info,  # plain text, no locals, then redacted
            _redact_values,
            structlog.dev.ConsoleRenderer(colors=False),
        ]
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
