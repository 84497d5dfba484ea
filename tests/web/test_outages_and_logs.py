"""What a reader sees when Redis is down, and what the logs never hold."""

from __future__ import annotations

import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from flask import Flask

from service import create_app
from service.app_state import get_database
from service.embedded_redis import free_port
from service.gunicorn_logger import RedactingGunicornLogger
from service.logs import redact
from service.mailsink import MailSink
from tests.conftest import make_settings


def test_redis_down_is_a_503_with_a_clear_message(
    app: Flask, database_url: str, sink: MailSink, caplog: pytest.LogCaptureFixture
) -> None:
    dead = create_app(make_settings(database_url, f"redis://127.0.0.1:{free_port()}/0", sink.url))
    try:
        client = dead.test_client()
        with caplog.at_level(logging.ERROR):
            api = client.post("/api/v1/subscriptions", json={"email": "a@mail.example"})
        assert api.status_code == 503
        assert api.get_json()["error"]["code"] == "unavailable"
        assert api.headers["Retry-After"] == "60"
        assert "Traceback" not in caplog.text
    finally:
        with dead.app_context():
            get_database().dispose()


def test_tokens_are_redacted_from_paths() -> None:
    assert redact("POST /unsubscribe/eyJ1.abc.def HTTP/1.1") == "POST /unsubscribe/<token> HTTP/1.1"
    assert redact("/preferences/tok/data.json") == "/preferences/<token>/data.json"
    assert redact("/confirm/tok?lang=en") == "/confirm/<token>?lang=en"
    assert redact("/releases/some-slug") == "/releases/some-slug"


def test_gunicorn_access_log_holds_no_token() -> None:
    logger = RedactingGunicornLogger(SimpleNamespace(**_gunicorn_cfg()))
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/confirm/eyJ1IjoiYWJjIn0.secret.sig",
        "PATH_INFO": "/confirm/eyJ1IjoiYWJjIn0.secret.sig",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "QUERY_STRING": "",
    }
    response = SimpleNamespace(status="200 OK", sent=10, headers=[])
    atoms = logger.atoms(response, SimpleNamespace(headers=[]), environ, timedelta(seconds=0))
    assert "secret" not in atoms["r"] and "secret" not in atoms["U"]
    assert atoms["r"] == "GET /confirm/<token> HTTP/1.1"


def _gunicorn_cfg() -> dict[str, object]:
    from gunicorn.config import Config

    return {name: setting.get() for name, setting in Config().settings.items()}


def test_a_request_id_is_echoed_and_carried_by_the_log_lines_of_that_request(
    app: Flask, database_url: str, sink: MailSink
) -> None:
    import io
    import json

    from service.logs import formatter

    dead = create_app(make_settings(database_url, f"redis://127.0.0.1:{free_port()}/0", sink.url))
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter("json"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        client = dead.test_client()
        answer = client.post(
            "/api/v1/subscriptions",
            json={"email": "kari.nordmann@mail.example"},
            headers={"X-Request-ID": "lb-7f3a9c21"},
        )
        odd = client.get("/healthz", headers={"X-Request-ID": "bad id\u2028with a line"})
    finally:
        root.removeHandler(handler)
        with dead.app_context():
            get_database().dispose()
    assert answer.status_code == 503 and answer.headers["X-Request-ID"] == "lb-7f3a9c21"
    assert odd.headers["X-Request-ID"] != "bad id\u2028with a line"  # a new one instead
    assert len(odd.headers["X-Request-ID"]) == 32
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    mine = [line for line in lines if line.get("request_id") == "lb-7f3a9c21"]
    assert mine and all({"timestamp", "level", "event", "logger"} <= set(m) for m in mine)
    assert "kari" not in out.getvalue() and "mail.example" not in out.getvalue()


def test_addresses_credentials_and_tokens_are_redacted_anywhere_in_a_line() -> None:
    assert redact("550 5.1.1 <kari.nordmann@mail.example>: no such user") == (
        "550 5.1.1 <<address>>: no such user"
    )
    assert redact("could not connect to postgresql://pressroom:s3cret@db:5432/press") == (
        "could not connect to postgresql://<credentials>@db:5432/press"
    )
    assert redact("GET /unsubscribe/eyJ1.abc.def?x=1") == "GET /unsubscribe/<token>?x=1"
    assert redact("release 12 sent to 400 readers") == "release 12 sent to 400 readers"


def test_a_traceback_in_a_log_line_holds_no_local_variable_and_is_redacted() -> None:
    import io
    import json

    from service.logs import formatter

    def unsubscribe(token: str, email: str, password: str) -> None:
        raise ValueError(f"could not unsubscribe {email}")

    secrets = ("eyJ1.secret-token.sig", "kari@mail.example", "hunter2-password")
    for log_format in ("json", "console"):
        out = io.StringIO()
        handler = logging.StreamHandler(out)
        handler.setFormatter(formatter(log_format))
        logger = logging.getLogger(f"test-traceback-{log_format}")
        logger.addHandler(handler)
        logger.propagate = False
        try:
            unsubscribe(*secrets)  # (a traceback shows this line of source, not the values)
        except ValueError:
            logger.exception("failed on /unsubscribe/%s", secrets[0])
        text = out.getvalue()
        for secret in ("secret-token", "kari", "hunter2"):
            assert secret not in text, (log_format, text)
        assert "could not unsubscribe <address>" in text
        if log_format == "json":
            line = json.loads(text)
            assert line["exception"][0]["exc_type"] == "ValueError"
