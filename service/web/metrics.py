"""`GET /metrics`: the web's Prometheus metrics, and gauges read at scrape time.

- HTTP requests, by prometheus-flask-exporter: `pressroom_http_request_duration_seconds`
  (a histogram by method, endpoint and status), `pressroom_http_request_total` and
  `pressroom_http_request_exceptions_total` (by method and status). Grouped by the view's
  endpoint name, never by path: a path can hold a reader's signed token.
- From the database at each scrape (service/domain/gauges.py): `pressroom_subscribers` by
  status, `pressroom_releases` by status, `pressroom_deliveries_owed`; from the broker,
  `pressroom_task_queue_messages`.

Only clients in METRICS_ALLOW (loopback by default) or with an API bearer token may read it;
others get 401. Under gunicorn with several processes, set PROMETHEUS_MULTIPROC_DIR (an empty
directory per start) and every process's counts are summed (prometheus_client's multiprocess
mode). Names and units follow prometheus.io/docs/practices/naming.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Iterator

from flask import Flask, Response, request
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_flask_exporter import PrometheusMetrics
from sqlalchemy.exc import SQLAlchemyError

from service.app_state import get_database, session_scope, settings_of
from service.db import Database, utcnow
from service.dispatch import BROKER_OUTAGES, Dispatcher
from service.domain import gauges, publishers
from service.domain.errors import N_, DomainError, ErrorKind
from service.web.api_auth import Unauthorized
from service.web.health import TooSlow, within

log = logging.getLogger(__name__)

READ_SECONDS = 5.0  # each scrape-time read; Prometheus's own scrape timeout is 10 s

UNMEASURED = ("^/metrics$", "^/healthz$", "^/readyz$", "^/static/")  # probes and files
# Requests with other methods (gunicorn takes any token) are not counted: each would be a
# series of its own, and anyone could add them without end.
COUNTED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def init_app(app: Flask) -> None:
    allowed = [ipaddress.ip_network(n) for n in settings_of(app).metrics_allow]
    exporter = PrometheusMetrics(
        app=None,
        path=None,  # our own view below: it checks who asks
        group_by="endpoint",
        defaults_prefix="pressroom",
        excluded_paths=list(UNMEASURED),
        registry=CollectorRegistry(auto_describe=True),  # one per app: tests build many
    )
    exporter.init_app(app)
    dispatcher: Dispatcher = app.extensions["pressroom.dispatch"]

    @app.after_request  # runs before the exporter's (Flask runs them last first)
    def count_known_methods_only(response: Response) -> Response:
        if request.method not in COUNTED_METHODS:
            request.prom_do_not_track = True  # type: ignore[attr-defined]
        return response

    @app.get("/metrics")
    def metrics() -> Response:
        if not _from(allowed) and not _token_given():
            raise Unauthorized()
        # The text format (what an Accept header asks for aside), expositions joined: the
        # requests (every process's, in multiprocess mode), this process's own registry
        # (its CPU and memory, reports taken by webhooks), and the gauges read now.
        body, content_type = exporter.generate_metrics()
        if not _multiprocess():
            body += generate_latest(REGISTRY).decode()
        scraped = CollectorRegistry(auto_describe=False)
        scraped.register(_ScrapeTime(get_database(), dispatcher))
        answer = Response(body + generate_latest(scraped).decode(), mimetype=None)
        answer.headers["Content-Type"] = content_type
        answer.headers["Cache-Control"] = "no-store"
        return answer


def _multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def _from(networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in network for network in networks)


def _token_given() -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    try:
        with session_scope() as session:
            found = publishers.publisher_for_token(session, token.strip(), now=utcnow())
    except SQLAlchemyError:
        raise DatabaseUnavailable() from None
    return found is not None


class DatabaseUnavailable(DomainError):
    code = "unavailable"
    kind = ErrorKind.UNAVAILABLE
    message = N_("The service is busy for a moment. Try again in a minute.")


class _ScrapeTime:
    """Gauges read when Prometheus asks, each within READ_SECONDS; a part that cannot be read
    is left out (and logged), so that the HTTP metrics still come through an outage."""

    def __init__(self, database: Database, dispatcher: Dispatcher) -> None:
        self.database = database
        self.dispatcher = dispatcher

    def _gauges(self) -> gauges.Gauges:
        with self.database.session_scope() as session:
            return gauges.read(session)

    def collect(self) -> Iterator[Metric]:
        try:
            now = within(READ_SECONDS, self._gauges)
        except (SQLAlchemyError, TooSlow) as error:
            log.warning("metrics: the database could not be read: %s", type(error).__name__)
        else:
            yield _by("pressroom_subscribers", "Readers by status.", "status", now.subscribers)
            yield _by("pressroom_releases", "Releases by status.", "status", now.releases)
            yield GaugeMetricFamily(
                "pressroom_deliveries_owed",
                "Deliveries still to be sent: pending or claimed by a worker.",
                value=now.deliveries_owed,
            )
        try:
            depth = within(READ_SECONDS, self.dispatcher.queue_depth)
        except (*BROKER_OUTAGES, TooSlow) as error:
            log.warning("metrics: the broker could not be read: %s", type(error).__name__)
        else:
            yield GaugeMetricFamily(
                "pressroom_task_queue_messages",
                "Tasks waiting in the broker's queue for a worker.",
                value=depth,
            )


def _by(name: str, documentation: str, label: str, counts: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value, count in sorted(counts.items()):
        family.add_metric([value], count)
    return family
