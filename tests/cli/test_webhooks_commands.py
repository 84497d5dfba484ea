"""`flask webhooks add|list|remove`: registering outgoing webhook endpoints (CONTRACT §9)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from flask import Flask
from sqlalchemy import select

from service.app_state import session_scope
from service.domain import webhook_signing
from service.models import Subscriber, WebhookEndpoint, WebhookEvent
from tests.cli.helpers import flask
from tests.conftest import ROOT
from tests.helpers import BIN, clean_env


def endpoints(app: Flask) -> list[tuple[str, str, bool]]:
    with app.app_context(), session_scope() as session:
        rows = session.query(WebhookEndpoint).order_by(WebhookEndpoint.id)
        return [(row.url, row.events, row.include_address) for row in rows]


def test_add_prints_the_id_and_the_secret_once_then_list_and_remove(app: Flask) -> None:
    added = flask(
        app,
        "webhooks",
        "add",
        "https://crm.example/hooks?key=1",
        "--events",
        "release.sent,subscriber.confirmed",
        "--include-address",
    )
    assert added.exit_code == 0, added.output
    endpoint_id = re.search(r"endpoint (\d+)", added.output)
    secret = re.search(r"(whsec_\S+)", added.output)
    assert endpoint_id and secret
    assert len(webhook_signing.key_of(secret.group(1))) == 24
    assert endpoints(app) == [
        ("https://crm.example/hooks?key=1", "subscriber.confirmed,release.sent", True)
    ]

    listed = flask(app, "webhooks", "list")
    assert listed.exit_code == 0
    assert "https://crm.example/hooks?key=1" in listed.output
    assert "with addresses" in listed.output and "0 failed" in listed.output
    assert secret.group(1) not in listed.output, "the secret is shown once only"

    removed = flask(app, "webhooks", "remove", endpoint_id.group(1))
    assert removed.exit_code == 0 and endpoints(app) == []
    again = flask(app, "webhooks", "remove", endpoint_id.group(1))
    assert again.exit_code == 1 and "no webhook endpoint" in again.output
    assert "Traceback" not in again.output


def test_bad_urls_and_events_are_refused_in_a_line(app: Flask) -> None:
    for args, said in (
        (["ftp://crm.example/", "--events", "release.sent"], "http:// or https://"),
        (["https:///nohost", "--events", "release.sent"], "names a host"),
        (["https://crm.example/", "--events", "release.deleted"], "Unknown event release.deleted"),
        (["https://crm.example/", "--events", ","], "at least one event"),
    ):
        result = flask(app, "webhooks", "add", *args)
        assert result.exit_code == 1, result.output
        assert said in result.output and "Traceback" not in result.output
    missing = flask(app, "webhooks", "add", "https://crm.example/")
    assert missing.exit_code == 2 and "--events" in missing.output
    assert endpoints(app) == []


def test_a_confirmed_import_owes_each_new_reader_a_confirmed_event(
    app: Flask, tmp_path: Path
) -> None:
    assert (
        flask(
            app, "webhooks", "add", "https://crm.example/", "--events", "subscriber.confirmed"
        ).exit_code
        == 0
    )
    pending = tmp_path / "pending.csv"
    pending.write_text("email\nper@example.no\n")
    assert flask(app, "subscribers", "import", str(pending)).exit_code == 0
    confirmed = tmp_path / "confirmed.csv"
    confirmed.write_text("email,topics\nola@example.no,kultur\nkari@example.no,\n")
    result = flask(
        app, "subscribers", "import", str(confirmed), "--confirmed", "--consent-note", "Paper forms"
    )
    assert result.exit_code == 0, result.output
    with app.app_context(), session_scope() as session:
        rows = session.execute(select(Subscriber.email, Subscriber.uid))
        uids = {email: uid for email, uid in rows}
        events = session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
        bodies = [json.loads(event.body) for event in events]
    assert [b["type"] for b in bodies] == ["subscriber.confirmed"] * 2
    assert {b["data"]["subscriber"]["uid"] for b in bodies} == {
        uids["ola@example.no"],
        uids["kari@example.no"],
    }


def test_the_command_the_contract_names_runs_as_an_operator_runs_it(app: Flask) -> None:
    """`flask --app service webhooks add URL --events ...` (CONTRACT §9) in a process of its
    own, configured by the environment alone (WEBHOOK_ALLOW_PRIVATE unset: internal addresses
    refused); a refusal is one line and exit status 1."""
    settings = app.extensions["pressroom.settings"]
    env = clean_env(
        SECRET_KEY=settings.secret_key,
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        LOG_FORMAT="console",
    )

    def add(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "flask"), "--app", "service", "webhooks", "add", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    added = add("https://crm.example/hooks", "--events", "release.sent")
    assert added.returncode == 0, added.stderr
    assert re.search(r"Added webhook endpoint \d+ for release\.sent\.", added.stdout)
    assert re.search(r"whsec_[A-Za-z0-9+/=]{32}", added.stdout)
    refused = add("https://crm.example/hooks", "--events", "release.deleted")
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith("Error: Unknown event release.deleted")
    assert "Traceback" not in refused.stderr
    internal = add("http://169.254.169.254/latest/meta-data/", "--events", "release.sent")
    assert internal.returncode == 1
    assert internal.stderr.strip() == (
        "Error: A webhook may not go to this machine or an internal network address "
        "(WEBHOOK_ALLOW_PRIVATE allows it)."
    )
    assert endpoints(app) == [("https://crm.example/hooks", "release.sent", False)]
