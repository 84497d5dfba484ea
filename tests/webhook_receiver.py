"""A real HTTP receiver for outgoing webhooks: an http.server on a free port, in a thread,
answering each POST from a script (a list of statuses used up one per request, then 200),
and a receiver's own signature check, written from the Standard Webhooks text alone (as
README's snippet is), not with the service's code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]  # names in lower case
    body: bytes
    answered: int

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self, script: list[int] | None = None) -> None:
        self.script = list(script or [])
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._lock:
                    status = receiver.script.pop(0) if receiver.script else 200
                    headers = {name.lower(): value for name, value in self.headers.items()}
                    receiver.received.append(Received(headers, body, status))
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("location", "http://elsewhere.example/hooks")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/pressroom"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def recover(self) -> None:
        """From now on every POST is answered 200."""
        with self._lock:
            self.script.clear()

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self.received)


def closed_port_url() -> str:
    """A URL on a local port nothing listens on: a receiver that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks/down"


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """A receiver's check (README "Outgoing webhooks"): HMAC-SHA256 with the base64-decoded
    part of the secret after `whsec_`, over "{webhook-id}.{webhook-timestamp}.{body}",
    base64, against each `v1,` signature offered."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1)[1] for s in headers["webhook-signature"].split() if "," in s]
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)
