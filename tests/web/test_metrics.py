"""GET /metrics: Prometheus's text format, the web's requests by endpoint and status, gauges
read at scrape time; only for METRICS_ALLOW networks or a bearer token; never an address or
a token in it."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from service.app_state import session_scope
from service.domain import subscriptions
from service.domain.tokens import TokenSigner
from service.models import SubscriberStatus
from tests.helpers import settings_changed
from tests.pipeline.helpers import add_subscribers, api_token

OUTSIDE = {"REMOTE_ADDR": "203.0.113.9"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_loopback_reads_requests_by_endpoint_and_gauges_from_the_database(
    app: Flask, client: FlaskClient
) -> None:
    add_subscribers(app, [f"r{n}@mail.example" for n in range(3)])
    add_subscribers(app, ["gone@mail.example"], status=SubscriberStatus.UNSUBSCRIBED)
    assert client.get("/").status_code == 200
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=")
    found = samples(answer.get_data(as_text=True))
    assert found[("pressroom_subscribers", (("status", "confirmed"),))] == 3
    assert found[("pressroom_subscribers", (("status", "unsubscribed"),))] == 1
    assert found[("pressroom_subscribers", (("status", "bounced"),))] == 0
    assert found[("pressroom_releases", (("status", "sending"),))] == 0
    assert found[("pressroom_deliveries_owed", ())] == 0
    assert ("pressroom_task_queue_messages", ()) in found
    index = (("endpoint", "public.index"), ("method", "GET"), ("status", "200"))
    assert found[("pressroom_http_request_duration_seconds_count", index)] >= 1
    assert not any(
        dict(labels).get("endpoint") == "metrics" for _, labels in found
    )  # the scrapes themselves are not counted


def test_another_network_needs_an_api_token(app: Flask, client: FlaskClient) -> None:
    refused = client.get("/metrics", environ_base=OUTSIDE)
    assert refused.status_code == 401
    wrong = client.get(
        "/metrics", environ_base=OUTSIDE, headers={"Authorization": "Bearer not-a-token"}
    )
    assert wrong.status_code == 401
    token = api_token(app)
    allowed = client.get(
        "/metrics", environ_base=OUTSIDE, headers={"Authorization": f"Bearer {token}"}
    )
    assert allowed.status_code == 200
    with settings_changed(app, metrics_allow=("203.0.113.0/24",)):
        from service import create_app

        other = create_app(app.extensions["pressroom.settings"])
    assert other.test_client().get("/metrics", environ_base=OUTSIDE).status_code == 200
    assert other.test_client().get("/metrics").status_code == 401  # loopback is not listed


def test_no_address_or_token_reaches_the_metrics(app: Flask, client: FlaskClient) -> None:
    email = "kari.nordmann@mail.example"
    [reader_id] = add_subscribers(app, [email])
    signer: TokenSigner = app.extensions["pressroom.signer"]
    with app.app_context(), session_scope() as session:
        reader = subscriptions.find_by_email(session, email)
        assert reader is not None and reader.id == reader_id
        token = subscriptions.unsubscribe_token(signer, reader)
    assert client.get(f"/unsubscribe/{token}").status_code == 200
    assert client.get(f"/unsubscribe/{token[:-3]}xyz").status_code in (400, 404)
    assert client.get(f"/preferences/{token}").status_code in (200, 400, 404)
    text = client.get("/metrics").get_data(as_text=True)
    assert token not in text and token[:20] not in text
    assert "kari" not in text and "mail.example" not in text
    endpoints = set(re.findall(r'endpoint="([^"]*)"', text))
    assert all("/" not in endpoint for endpoint in endpoints), endpoints


def exported_names(text: str) -> set[str]:
    """Every sample name an exposition can hold, from its TYPE lines."""
    suffixes = {"counter": ["_total", "_created"], "histogram": ["_bucket", "_count", "_sum"]}
    names: set[str] = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.M):
        names.add(name)
        names.update(name + suffix for suffix in suffixes.get(kind, []))
    return names


def test_the_grafana_dashboard_asks_only_for_metrics_pressroom_exports(
    client: FlaskClient,
) -> None:
    import json

    from prometheus_client import REGISTRY, generate_latest

    import service.sending.meters  # noqa: F401  (the workers' metrics, in this registry)
    from tests.conftest import ROOT

    assert client.get("/").status_code == 200  # the request metrics have samples
    names = exported_names(client.get("/metrics").get_data(as_text=True))
    names |= exported_names(generate_latest(REGISTRY).decode())
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "pressroom.json").read_text())
    asked = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bpressroom_[a-z_]+", target["expr"])
    }
    assert asked and asked <= names, asked - names


def test_requests_with_made_up_methods_add_no_series(client: FlaskClient) -> None:
    for method in ("FOOBARBAZ", "ZZZQQ", "PROPFIND"):
        assert client.open("/", method=method).status_code in (404, 405)
    text = client.get("/metrics").get_data(as_text=True)
    assert "FOOBARBAZ" not in text and "ZZZQQ" not in text and "PROPFIND" not in text


def test_a_token_cannot_be_checked_while_the_database_is_down(app: Flask) -> None:
    from service import create_app
    from service.embedded_redis import free_port
    from tests.conftest import make_settings

    settings = app.extensions["pressroom.settings"]
    down = create_app(
        make_settings(
            f"postgresql://pressroom@127.0.0.1:{free_port()}/pressroom",
            app.extensions["pressroom.redis_url"],
            settings.smtp_url,
        )
    )
    token = api_token(app)  # well formed: it must be looked up
    answer = down.test_client().get(
        "/metrics", environ_base=OUTSIDE, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 503
    loopback = down.test_client().get("/metrics")  # the HTTP metrics, without the gauges
    assert loopback.status_code == 200
    assert "pressroom_subscribers" not in loopback.get_data(as_text=True)
