"""A real worker's Prometheus metrics on WORKER_METRICS_PORT: what a send did, counted as it
happened; no address in them; only METRICS_ALLOW networks may read them."""

from __future__ import annotations

import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from service.embedded_redis import free_port
from tests.pipeline.deployment import Deployment
from tests.pipeline.helpers import add_subscribers, api_token, finished, publish, wait_until
from workers.metrics_server import _guarded


def scrape(port: int) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return text, found


def test_a_worker_counts_what_a_send_did(deployment: Deployment) -> None:
    d = deployment
    port = free_port()
    d.settings = d.settings.replace(worker_metrics_port=port)
    token = api_token(d.app)
    readers = [f"reader{n}@mail.example" for n in range(20)]
    add_subscribers(d.app, readers)
    d.handler.refusals[readers[7]] = ["550 5.1.1 No such user"]
    d.worker("w", concurrency=2)
    d.beat()
    release = publish(d.app.test_client(), token)
    wait_until(lambda: finished(d, token, release["id"]), timeout=60, what=d.logs)

    text, found = scrape(port)
    assert found[("pressroom_messages_total", (("outcome", "sent"),))] == 19
    assert found[("pressroom_messages_total", (("outcome", "failed"),))] == 1
    assert found[("pressroom_batches_total", ())] >= 1
    hard = (("kind", "hard_bounce"), ("outcome", "suppressed"))
    assert found[("pressroom_bounce_reports_total", hard)] == 1
    relay = d.settings.relays[0].name
    mail = (("command", "mail"), ("relay", relay))
    assert found[("pressroom_smtp_reply_seconds_count", mail)] >= 20
    assert ("process_resident_memory_bytes", ()) in found  # the process's own, as usual
    assert "@" not in text and "mail.example" not in text  # no address, whole or part
    wait_until(lambda: scrape(port)[1].get(("pressroom_sweeps_total", ()), 0) >= 1, timeout=30)


def test_the_metrics_server_answers_only_allowed_networks() -> None:
    import ipaddress

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"pressroom_messages_total 1\n"]

    guarded = _guarded(app, [ipaddress.ip_network("10.0.0.0/8")])
    statuses: list[str] = []
    assert guarded({"REMOTE_ADDR": "10.1.2.3"}, lambda s, h: statuses.append(s)) == [
        b"pressroom_messages_total 1\n"
    ]
    body = guarded({"REMOTE_ADDR": "203.0.113.9"}, lambda s, h: statuses.append(s))
    assert statuses == ["200 OK", "403 Forbidden"] and b"METRICS_ALLOW" in b"".join(body)
