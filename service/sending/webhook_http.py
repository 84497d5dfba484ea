"""One POST of an outgoing webhook, bounded and kept off internal networks.

- Address: the host is resolved once and each address is judged (webhook_addresses) before
  a connection is tried to it, then the connected socket's peer is judged again; the request
  goes over that very socket, so a name that resolves differently a moment later (DNS
  rebinding) changes nothing. A refusal is recorded as "address not allowed" and nothing more,
  so the desk's last error tells nobody which internal ports answer. HTTP(S)_PROXY is not
  used: a proxy would hide the receiver's address.
- Time: DEADLINE seconds for everything (connecting, TLS, sending, the answer's head and
  up to MAX_ANSWER bytes of its body), well inside the outbox's 60 s LEASE, whatever a receiver
  does, dripping its answer a byte at a time included: a watchdog shuts the socket down then.
  Each socket operation also has TIMEOUT seconds at most. Resolving the name is the resolver's
  (its own timeouts, a few seconds).
- No redirect is followed (http.client follows none); certificates are verified.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from service.domain import webhook_addresses

TIMEOUT = 10.0  # seconds, each socket operation
DEADLINE = 20.0  # seconds, the whole attempt (the outbox's LEASE is 60)
MAX_ANSWER = 64 * 1024  # bytes of the answer's body read (and dropped)
USER_AGENT = "Pressroom-Webhooks/1"
NOT_ALLOWED = "address not allowed"


class AddressNotAllowed(Exception):
    """The receiver's address is internal and WEBHOOK_ALLOW_PRIVATE is not set."""


class _Deadline:
    """Seconds left until the attempt's end, and the watchdog that enforces it."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds
        self.seconds = seconds
        self.expired = False

    def left(self) -> float:
        return self.end - time.monotonic()

    def timeout(self) -> float:
        """For the next socket operation: TIMEOUT, or less when the deadline is nearer.
        Raises TimeoutError once it has passed."""
        left = self.left()
        if left <= 0:
            self.expired = True
            raise TimeoutError("deadline")
        return min(TIMEOUT, left)


def _connector(
    deadline: _Deadline, *, allow_private: bool
) -> Callable[[tuple[str, int], object, object], socket.socket]:
    """http.client's `_create_connection`: socket.create_connection with every address judged
    before and after connecting."""

    def connect(address: tuple[str, int], *_: object) -> socket.socket:
        host, port = address
        candidates = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        refused, last_error = False, None
        for family, kind, proto, _name, peer in candidates:
            if not webhook_addresses.allowed(str(peer[0]), allow_private=allow_private):
                refused = True
                continue
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(deadline.timeout())
                sock.connect(peer)
                connected = sock.getpeername()[0]
            except OSError as error:
                sock.close()
                last_error = error
                continue
            if not webhook_addresses.allowed(str(connected), allow_private=allow_private):
                sock.close()
                raise AddressNotAllowed
            return sock
        if last_error is not None:
            raise last_error
        if refused:
            raise AddressNotAllowed
        raise OSError("the name has no address")

    return connect


class _Watchdog(threading.Thread):
    """Once the deadline has passed, shuts down the connection's socket, and again every
    CUT_EVERY seconds (a TLS socket replaces the plain one after the handshake) until the
    attempt is over. socket.socket's own shutdown, also for a TLS socket (whose shutdown would
    unwrap it under the reading thread): it ends whatever read or write waits on it."""

    CUT_EVERY = 0.1

    def __init__(self, connection: http.client.HTTPConnection, deadline: _Deadline) -> None:
        super().__init__(daemon=True, name="webhook-deadline")
        self.connection, self.deadline = connection, deadline
        self.over = threading.Event()

    def run(self) -> None:
        if self.over.wait(max(self.deadline.left(), 0.0)):
            return
        self.deadline.expired = True
        while True:
            sock = self.connection.sock
            if sock is not None:
                with contextlib.suppress(OSError):  # not connected yet, or being replaced
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
            if self.over.wait(self.CUT_EVERY):
                return

    def stop(self) -> None:
        """The attempt is over: after this the socket may be closed (never under the
        watchdog, whose shutdown could otherwise hit a descriptor number reused since)."""
        self.over.set()
        self.join()


def post(
    url: str,
    headers: dict[str, str],
    body: bytes,
    *,
    allow_private: bool,
    deadline_seconds: float = DEADLINE,
) -> str | None:
    """POST `body` to `url` (http or https): None for a 2xx answer, else a short reason: the
    status, NOT_ALLOWED, or what stopped the attempt ("no answer: ...")."""
    parts = urlsplit(url)
    deadline = _Deadline(deadline_seconds)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:  # a port out of range
        host, port = None, None
    if parts.scheme not in ("http", "https") or not host:
        return "no answer: not an http(s) URL"
    # Given explicitly: http.client would read the end of a bare IPv6 address as a port.
    port = port or (443 if parts.scheme == "https" else 80)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            host, port, timeout=TIMEOUT, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
    # Not in http.client's documentation, but its one seam for the socket (Python 3.4 on).
    connection._create_connection = _connector(  # type: ignore[attr-defined]
        deadline, allow_private=allow_private
    )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    watchdog = _Watchdog(connection, deadline)
    watchdog.start()
    try:
        connection.request("POST", target, body=body, headers={**headers, "user-agent": USER_AGENT})
        answer = connection.getresponse()
        if deadline.expired:  # a head cut short by the watchdog reads as a complete one
            raise TimeoutError("deadline")
        status = answer.status
        with contextlib.suppress(Exception):  # the status counts: a body cut short is no matter
            answer.read(MAX_ANSWER)
    except AddressNotAllowed:
        return NOT_ALLOWED
    except Exception as error:  # OSError, ssl's, http.client's own (BadStatusLine, ...)
        if deadline.expired:
            return f"no answer within {deadline.seconds:g} s"
        if isinstance(error, OSError):
            return f"no answer: {error.__class__.__name__}: {error}"
        return f"no answer: {error.__class__.__name__}"
    finally:
        watchdog.stop()
        connection.close()
    if 200 <= status < 300:
        return None
    return f"HTTP {status}" + (" (a redirect, not followed)" if 300 <= status < 400 else "")
