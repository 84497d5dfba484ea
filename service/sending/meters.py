"""The workers' Prometheus metrics (prometheus_client), counted where a send does its work
and served by each worker process on WORKER_METRICS_PORT (workers/metrics_server.py).

Names and units follow prometheus.io/docs/practices/naming: counters end in `_total` (added
by prometheus_client), durations are histograms in seconds. Labels hold only small fixed
sets (an outcome, a notice's kind, a relay's host:port), never an address, a uid or an id.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Histogram

from service.domain.bounce_policy import Taken

MESSAGES = Counter(
    "pressroom_messages",
    "Release copies by outcome: sent; deferred (a 4xx or an outage: tried again); failed "
    "(refused for good); skipped (the reader left before their copy went out).",
    ["outcome"],
)
NOTICES = Counter(
    "pressroom_notices",
    "Notices to readers (confirmation, already_subscribed, welcome, invitation) by outcome: "
    "sent, skipped (no longer owed), refused, deferred.",
    ["kind", "outcome"],
)
BATCHES = Counter("pressroom_batches", "Batches of a release's deliveries claimed by a worker.")
SWEEPS = Counter("pressroom_sweeps", "Sweeps run (the backstop, every SWEEP_SECONDS).")
LEASES_EXPIRED = Counter(
    "pressroom_leases_expired",
    "Claimed deliveries whose worker vanished, taken back by the sweep (sent if its journal "
    "says so, owed again otherwise).",
)
BOUNCE_REPORTS = Counter(
    "pressroom_bounce_reports",
    "Reports taken by the bounce policy (refusals during a send included), by kind and by "
    "what they did (suppressed, scored, unsubscribed, counted, unchanged).",
    ["kind", "outcome"],
)
WEBHOOK_ATTEMPTS = Counter(
    "pressroom_webhook_attempts",
    "Attempts to post an outgoing webhook event, by what became of the event: delivered, "
    "retrying (tried again later), failed (its retry window is over).",
    ["outcome"],
)
SMTP_REPLY_SECONDS = Histogram(
    "pressroom_smtp_reply_seconds",
    "Seconds from writing a command to its reply, by relay (host:port) and command: mail "
    "(MAIL FROM; with PIPELINING, the envelope's round trip) and data (the message's final "
    "reply).",
    ["relay", "command"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


def count_reports(taken: Iterable[Taken]) -> None:
    """Reports the bounce policy applied (not those naming nobody, nor repeats)."""
    for report in taken:
        if report.kind is not None and report.outcome is not None:
            BOUNCE_REPORTS.labels(report.kind.value, report.outcome.value).inc()


def count_batch(sent: int, failed: int, deferred: int, skipped: int, *, claimed: bool) -> None:
    if claimed:
        BATCHES.inc()
    for outcome, count in (
        ("sent", sent),
        ("failed", failed),
        ("deferred", deferred),
        ("skipped", skipped),
    ):
        if count:
            MESSAGES.labels(outcome).inc(count)
