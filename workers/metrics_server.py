"""A worker's Prometheus metrics over HTTP on WORKER_METRICS_PORT (all interfaces), started
when the worker is ready: `GET /metrics` for clients in METRICS_ALLOW, 403 for others.

With the threads pool (workers/__init__.py) a worker is one process and its registry is
prometheus_client's default one. Under a prefork pool, set PROMETHEUS_MULTIPROC_DIR (an empty
directory per start, shared by the pool's processes) and the server sums every child's
counts (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app, multiprocess

from service.config import Settings

log = logging.getLogger(__name__)

Networks = list[ipaddress.IPv4Network | ipaddress.IPv6Network]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    timeout = 10  # seconds a connection may idle: an open socket must not hold a thread

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every 15 s are not worth a log line each."""


def serve(settings: Settings) -> WSGIServer | None:
    """Start the server in a daemon thread; None when WORKER_METRICS_PORT is 0. Raises
    OSError when the port is taken."""
    if not settings.worker_metrics_port:
        return None
    allowed: Networks = [ipaddress.ip_network(n) for n in settings.metrics_allow]
    server = make_server(
        "", settings.worker_metrics_port, _guarded(make_wsgi_app(_registry()), allowed),
        server_class=_Server, handler_class=_Quiet,
    )  # fmt: skip
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("worker metrics on port %s", settings.worker_metrics_port)
    return server


def _registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def _guarded(app: Callable[..., Iterable[bytes]], allowed: Networks) -> Callable[..., Any]:
    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            client = ipaddress.ip_address(environ.get("REMOTE_ADDR", ""))
        except ValueError:
            client = None
        if client is None or not any(client in network for network in allowed):
            start_response("403 Forbidden", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"Metrics are for the networks in METRICS_ALLOW.\n"]
        return app(environ, start_response)

    return guarded
