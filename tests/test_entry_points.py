"""The production entry points of CONTRACT §2, run as an operator would run them."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from service.embedded_redis import free_port
from service.mailsink import MailSink
from tests.conftest import ROOT
from tests.helpers import BIN, clean_env, start_gunicorn, stop, wait_for_http


def test_missing_secret_key_stops_the_app_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "flask"), "--app", "service", "db", "upgrade"],
        env=clean_env(DATABASE_URL=f"sqlite:///{tmp_path}/x.db", REDIS_URL="redis://127.0.0.1:1/0"),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "SECRET_KEY" in lines[0]
    assert "Traceback" not in result.stderr


def test_gunicorn_without_a_secret_key_stops_instead_of_looping(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "gunicorn"), "service:create_app()", f"--bind=127.0.0.1:{free_port()}"],
        env=clean_env(DATABASE_URL=f"sqlite:///{tmp_path}/x.db", REDIS_URL="redis://127.0.0.1:1/0"),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.count("configuration error: SECRET_KEY") == 1


def test_missing_redis_url_is_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(BIN / "flask"), "--app", "service", "db", "upgrade"],
        env=clean_env(
            SECRET_KEY="a-long-enough-secret-key", DATABASE_URL=f"sqlite:///{tmp_path}/x.db"
        ),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "pressroom: configuration error: REDIS_URL is not set: point it at your Redis "
        "(`make run` starts one for you)."
    ]


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("SMTP_CONNECTIONS", "0", "SMTP_CONNECTIONS must be a whole number of at least 1"),
        ("SMTP_MESSAGES_PER_CONNECTION", "lots", "SMTP_MESSAGES_PER_CONNECTION must be a whole"),
        ("SMTP_URL", "smtp://u:hunter2@a.example:25x", "is not a URL like scheme://"),
        ("SMTP_URL", "smtp://a.example?pool_size=4", "unknown option 'pool_size'"),
    ],
)
@pytest.mark.parametrize(
    "command",
    [["celery", "-A", "workers", "worker"], ["flask", "--app", "service", "db", "upgrade"]],
    ids=["worker", "flask"],
)
def test_bad_relay_settings_stop_the_process_at_start_in_one_line(
    tmp_path: Path, command: list[str], name: str, value: str, says: str
) -> None:
    result = subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        env=clean_env(
            SECRET_KEY="a-long-enough-secret-key",
            DATABASE_URL=f"sqlite:///{tmp_path}/x.db",
            REDIS_URL="redis://127.0.0.1:1/0",
            **{name: value},
        ),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"pressroom: configuration error: {name}")
    assert says in lines[0]
    assert "hunter2" not in result.stderr


@pytest.fixture
def deployment(tmp_path: Path, redis_url: str) -> Iterator[tuple[dict[str, str], MailSink]]:
    sink = MailSink().start()
    env = clean_env(
        SECRET_KEY="entry-point-test-secret-key",
        DATABASE_URL=f"sqlite:///{tmp_path}/pressroom.db",
        REDIS_URL=redis_url,
        SMTP_URL=sink.url,
        BASE_URL="https://press.example",
        CELERY_QUEUE=f"entry-points-{os.getpid()}",
    )
    yield env, sink
    sink.stop()


def test_migrate_gunicorn_and_celery_worker_serve_a_signup(
    deployment: tuple[dict[str, str], MailSink], tmp_path: Path
) -> None:
    env, sink = deployment
    subprocess.run(
        [str(BIN / "flask"), "--app", "service", "db", "upgrade"],
        env=env,
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=60,
    )
    port = free_port()
    processes = [
        start_gunicorn(env, port),
        subprocess.Popen(
            [str(BIN / "celery"), "-A", "workers", "worker", "--pool=solo", "--loglevel=WARNING"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    try:
        assert b"<form" in wait_for_http(f"http://127.0.0.1:{port}/")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/subscriptions",
            data=b'{"email": "operator@mail.example"}',
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202
        mail = sink.handler.wait_for(1, timeout=30)[0]
        assert mail.recipients == ("operator@mail.example",)
        assert "https://press.example/confirm/" in mail.message.get_body(("plain",)).get_content()
    finally:
        stop(processes)


def raw_request(
    port: int, target: str, headers: Sequence[tuple[str, str]] = ()
) -> tuple[int, str, str]:
    """One GET sent as bytes (http.client would refuse some of these); (status, type, body)."""
    lines = [f"GET {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        response = http.client.HTTPResponse(connection)
        response.begin()
        body = response.read().decode("utf-8", "replace")
        return response.status, response.getheader("Content-Type") or "", body


def test_gunicorn_refuses_long_request_lines_and_headers_in_the_apps_error_shape(
    deployment: tuple[dict[str, str], MailSink],
) -> None:
    """414 and 431 answer like every other error: {"error": {"code", "message"}} under /api/,
    a page elsewhere; beyond even gunicorn's raised limits, still the JSON error body, never
    gunicorn's HTML."""
    env, _sink = deployment
    port = free_port()
    server = start_gunicorn(env, port)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api/v1/openapi.json")
        long_query, longer_query = "x=" + "a" * 5_000, "x=" + "a" * 9_000
        big, bigger = "b" * 10_000, "b" * 20_000
        many = [(f"X-Header-{i}", "1") for i in range(150)]
        api_cases = [
            ("a 5 KB query", f"/api/v1/releases?{long_query}", [], 414, "uri_too_long"),
            ("a 9 KB query", f"/api/v1/releases?{longer_query}", [], 414, "uri_too_long"),
            ("a 10 KB header", "/api/v1/releases", [("X-Big", big)], 431, "headers_too_large"),
            ("a 20 KB header", "/api/v1/releases", [("X-Big", bigger)], 431, "headers_too_large"),
            ("150 headers", "/api/v1/releases", many, 431, "headers_too_large"),
        ]
        api_cases.append(
            ("a header name with a space", "/api/v1/releases", [("X Bad", "1")], 400, "bad_request")
        )
        for name, target, headers, status, code in api_cases:
            answer = raw_request(port, target, headers)
            assert answer[:2] == (status, "application/json"), (name, answer[:2], answer[2][:200])
            assert json.loads(answer[2])["error"]["code"] == code, name
        page_cases = [
            ("a 5 KB query", f"/?{long_query}", [], 414),
            ("a 10 KB header", "/", [("X-Big", big)], 431),
            ("150 headers", "/", many, 431),
        ]
        for name, target, headers, status in page_cases:
            answer = raw_request(port, target, headers)
            assert answer[0] == status and answer[1].startswith("text/html"), (name, answer[:2])
            assert "<!doctype html>" in answer[2].lower(), name
    finally:
        stop([server])


def test_two_gunicorns_of_one_user_share_no_control_socket(
    deployment: tuple[dict[str, str], MailSink], tmp_path: Path
) -> None:
    """gunicorn 25+ opens a control socket at ~/.gunicorn/gunicorn.ctl for every instance of
    a user, so a second instance on the machine took over the first one's (issue 10, item
    17). Pressroom turns it off; nothing is made under HOME or XDG_RUNTIME_DIR."""
    env, _sink = deployment
    home = tmp_path / "home"
    home.mkdir()
    env = {**env, "HOME": str(home)}
    env.pop("XDG_RUNTIME_DIR", None)
    ports = [free_port(), free_port()]
    servers = [start_gunicorn(env, port) for port in ports]
    try:
        for port in ports:
            wait_for_http(f"http://127.0.0.1:{port}/api/v1/openapi.json")
        assert not (home / ".gunicorn").exists()
    finally:
        stop(servers)
