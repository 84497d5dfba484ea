"""SMTP_URL read: the relays a worker sends through (CONTRACT.md §3 and §9).

One URL, or several separated by commas, each `scheme://[user:password@]host[:port]` with optional
`?max_connections=N&weight=W`:

    SMTP_URL=smtp+starttls://u:p@relay-a.example:587?weight=3,smtps://u:p@relay-b.example?max_connections=8

Schemes: `smtp` (plain, port 25), `smtp+starttls` (587), `smtps` (TLS from the start, 465).
`weight` (a positive number, default 1) is the relay's share of the messages; `max_connections` (a
whole number, default: no cap beyond SMTP_CONNECTIONS) caps its connections per worker process.
The list splits before each `scheme://`: a comma in a password is fine unless what follows it
reads as a scheme (`,smtp://`); percent-encode it (%2C) then.

Plain Python, read by config.Settings.validate at start (a malformed list stops the process with
one line naming SMTP_URL) and by the worker's relay pool.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
OPTIONS = ("max_connections", "weight")
# A new relay starts where a comma is followed by a scheme; a comma elsewhere (a password) stays.
_NEXT_RELAY = re.compile(r",\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
SHAPE = "scheme://[user:password@]host[:port]"


class RelayUrlError(ValueError):
    """SMTP_URL cannot be read; the message says which relay and why, in one line, without
    the password."""


@dataclass(frozen=True)
class SmtpSettings:
    """One relay: where it is, how to log in, and its share of a worker's connections."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0  # seconds for connecting and for each reply
    max_connections: int | None = None
    weight: float = 1.0

    @classmethod
    def from_url(cls, url: str) -> SmtpSettings:
        """One relay's URL; raises RelayUrlError, whose message shows the relay as
        scheme://host:port at most (never the user or the password)."""
        url = url.strip()
        try:
            parts = urlsplit(url)
            port = parts.port
            host = parts.hostname
        except ValueError:  # a port that is not a number, a malformed IPv6 host
            raise RelayUrlError(f"is not a URL like {SHAPE}") from None
        shown = f"{parts.scheme}://{host or ''}" + (f":{port}" if port is not None else "")
        if parts.scheme not in DEFAULT_PORTS:
            schemes = ", ".join(f"{s}://" for s in DEFAULT_PORTS)
            raise RelayUrlError(f"must start with one of {schemes}, not {parts.scheme or '?'}://")
        if not host:
            raise RelayUrlError(f"{shown} names no host")
        if not _is_host(host):
            raise RelayUrlError(f"{shown}: the host is no DNS name (xn-- for IDN) or IP address")
        if port == 0:
            raise RelayUrlError(f"{shown}: the port must be 1-65535")
        if parts.path not in ("", "/") or parts.fragment:
            raise RelayUrlError(f"{shown} has a path; a relay is {SHAPE}")
        options = _options(shown, parts.query)
        return cls(
            scheme=parts.scheme,
            host=host,
            port=port or DEFAULT_PORTS[parts.scheme],
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            **options,
        )

    @property
    def name(self) -> str:
        """host:port, for logs and metrics (never the credentials)."""
        return f"{self.host}:{self.port}"

    def __repr__(self) -> str:  # never show the password
        return f"SmtpSettings({self.scheme}://{self.name}, user={self.username!r})"


def parse_relays(value: str) -> tuple[SmtpSettings, ...]:
    """Every relay SMTP_URL names, in order; raises RelayUrlError."""
    urls = [url for url in _NEXT_RELAY.split(value.strip()) if url.strip()]
    if not urls:
        raise RelayUrlError("names no relay")
    relays: list[SmtpSettings] = []
    for number, url in enumerate(urls, start=1):
        try:
            relays.append(SmtpSettings.from_url(url))
        except RelayUrlError as error:
            where = f"relay {number} of {len(urls)}" if len(urls) > 1 else "the relay"
            raise RelayUrlError(f"{where} {error}") from None
    seen: set[tuple[str, str, int, str | None]] = set()
    for relay in relays:
        key = (relay.scheme, relay.host, relay.port, relay.username)
        if key in seen:
            raise RelayUrlError(f"names {relay.name} twice")
        seen.add(key)
    return tuple(relays)


def _options(shown: str, query: str) -> dict[str, int | float]:
    options: dict[str, int | float] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise RelayUrlError(f"{shown} has a malformed query {query!r}") from None
    for name, raw in pairs:
        if name not in OPTIONS:
            raise RelayUrlError(
                f"{shown} has an unknown option {name!r} (known: {', '.join(OPTIONS)})"
            )
        if name in options:
            raise RelayUrlError(f"{shown} sets {name} twice")
        if name == "max_connections":
            if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
                raise RelayUrlError(f"{shown}: max_connections must be a whole number >= 1")
            options[name] = int(raw)
        else:
            try:
                weight = float(raw)
            except ValueError:
                weight = 0.0
            if not 0 < weight < float("inf"):
                raise RelayUrlError(f"{shown}: weight must be a positive number")
            options[name] = weight
    return options


def _is_host(host: str) -> bool:
    """A DNS name of ASCII labels (RFC 1123 §2.1: letters, digits, inner hyphens, 1-63 each,
    253 in all) or an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    return len(host) <= 253 and all(_LABEL.fullmatch(label) for label in host.split("."))
