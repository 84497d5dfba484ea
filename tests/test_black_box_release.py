"""Black-box, on the contract alone: the operator's commands, gunicorn, a worker and beat.

A publisher made with `flask publisher create` publishes through the API; readers who confirmed
through the real confirm flow and readers imported from CSV get the release once, in their
language; nobody else gets it; the API's delivery counts equal what the SMTP sink received.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from service.embedded_redis import free_port
from service.mailsink import MailSink, ReceivedMail
from tests.conftest import ROOT
from tests.helpers import BIN, clean_env, stop, wait_for_http

PUBLISHER = "desk@press.example"
PASSWORD = "a long enough password"
TITLE_NB = "60 år siden Jurij Gagarin erobret verdensrommet"
TITLE_EN = "60 years since Yuri Gagarin conquered space"


@dataclass
class Site:
    env: dict[str, str]
    base: str
    sink: MailSink
    workdir: Path

    def flask(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [str(BIN / "flask"), "--app", "service", *args],
            env=self.env,
            cwd=self.workdir,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def api(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data, headers, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())


@pytest.fixture
def site(tmp_path: Path, redis_url: str) -> Iterator[Site]:
    sink = MailSink().start()
    port = free_port()
    env = clean_env(
        SECRET_KEY="black-box-secret-key-0123456789",
        DATABASE_URL=f"sqlite:///{tmp_path}/pressroom.db",
        REDIS_URL=redis_url,
        SMTP_URL=sink.url,
        BASE_URL=f"http://127.0.0.1:{port}",
        CELERY_QUEUE=f"black-box-{os.getpid()}",
        SWEEP_SECONDS="1",
    )
    site = Site(env, f"http://127.0.0.1:{port}", sink, tmp_path)
    site.flask("db", "upgrade")
    logs = [open(tmp_path / f"{name}.log", "wb") for name in ("web", "worker", "beat")]  # noqa: SIM115
    commands = [
        [str(BIN / "gunicorn"), "service:create_app()", f"--bind=127.0.0.1:{port}"],
        [str(BIN / "celery"), "-A", "workers", "worker", "--concurrency=2", "--loglevel=INFO"],
        [str(BIN / "celery"), "-A", "workers", "beat", f"--schedule={tmp_path}/beat"],
    ]
    processes = [
        subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        for command, log in zip(commands, logs, strict=True)
    ]
    try:
        wait_for_http(site.base + "/")
        yield site
    finally:
        stop(processes)
        for log in logs:
            log.close()
        sink.stop()


class Browser:
    """A reader's browser: cookies, and the CSRF token of the last page."""

    def __init__(self, base: str, language: str) -> None:
        self.base = base
        self.language = language
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> str:
        request = urllib.request.Request(
            self.base + path, headers={"Accept-Language": self.language}
        )
        with self.opener.open(request, timeout=10) as response:
            return response.read().decode()

    def post_form(self, path: str, page: str, **fields: str) -> str:
        # The confirm page has none: the token in its URL is the credential.
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        csrf = {"csrf_token": token.group(1)} if token else {}
        data = urllib.parse.urlencode({**csrf, **fields}).encode()
        request = urllib.request.Request(
            self.base + path, data, headers={"Accept-Language": self.language}
        )
        with self.opener.open(request, timeout=10) as response:
            return response.read().decode()


def confirm_link(mail: ReceivedMail) -> str:
    text = mail.message.get_body(("plain",)).get_content()
    found = re.search(r"http://127\.0\.0\.1:\d+(/confirm/[A-Za-z0-9._\-]+)", text)
    assert found, "no confirm link in the mail"
    return found.group(1)


def mail_to(sink: MailSink, address: str, count_before: int) -> ReceivedMail:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for mail in sink.handler.received[count_before:]:
            if address in mail.recipients:
                return mail
        time.sleep(0.05)
    raise TimeoutError(f"no mail to {address}")


def test_publisher_from_the_cli_reaches_confirmed_and_imported_readers_once(site: Site) -> None:
    site.flask("publisher", "create", PUBLISHER, "--password-stdin", stdin=PASSWORD + "\n")
    token = site.flask("token", "create", PUBLISHER).strip()

    # Readers from a CSV the newsroom brought along: confirmed ones, and one still pending.
    (site.workdir / "confirmed.csv").write_text(
        "\ufeffemail;language;name\nola@mail.example;nb;Ola\nanne@mail.example;en;Anne\n"
    )
    (site.workdir / "pending.csv").write_text("email\nlater@mail.example\n")
    site.flask("subscribers", "import", "confirmed.csv", "--confirmed", "--consent-note", "list")
    site.flask("subscribers", "import", "pending.csv")

    # Readers through the site: two confirm (one in English), one never does.
    for address, language in [
        ("kari@mail.example", "nb"),
        ("john@mail.example", "en"),
        ("lazy@mail.example", "nb"),
    ]:
        before = len(site.sink.handler.received)
        browser = Browser(site.base, language)
        browser.post_form("/subscribe", browser.get("/"), email=address)
        link = confirm_link(mail_to(site.sink, address, before))
        if address != "lazy@mail.example":
            page = browser.get(link)
            assert "<form" in page
            browser.post_form(link, page)

    release = site.api(
        "POST",
        "/api/v1/releases",
        {
            "title": TITLE_NB,
            "summary": "12. april 1961",
            "body": "Den **12. april 1961** ble Gagarin det første mennesket i verdensrommet.",
            "language": "nb",
            "translations": {"en": {"title": TITLE_EN, "summary": "12 April 1961", "body": "x"}},
            "publish": True,
        },
        token,
    )
    deadline = time.monotonic() + 60
    while (
        site.api("GET", f"/api/v1/releases/{release['id']}", token=token)["delivery"]["state"]
        != "sent"
    ):
        assert time.monotonic() < deadline, (site.workdir / "worker.log").read_text()[-3000:]
        time.sleep(0.2)

    release_mail = [
        mail
        for mail in site.sink.handler.received
        if str(mail.message["Subject"]) in (TITLE_NB, TITLE_EN)
    ]
    received = Counter(r for mail in release_mail for r in mail.recipients)
    expected = {"ola@mail.example", "anne@mail.example", "kari@mail.example", "john@mail.example"}
    assert set(received) == expected and max(received.values()) == 1
    subjects = {mail.recipients[0]: str(mail.message["Subject"]) for mail in release_mail}
    assert subjects["anne@mail.example"] == subjects["john@mail.example"] == TITLE_EN
    assert subjects["ola@mail.example"] == subjects["kari@mail.example"] == TITLE_NB
    progress = site.api("GET", f"/api/v1/releases/{release['id']}", token=token)["delivery"]
    assert progress["sent"] == progress["total"] == len(release_mail) == len(expected)
    assert progress["failed"] == progress["pending"] == 0

    # One reader leaves with the one-click link of their copy (RFC 8058), as Gmail does.
    kari = next(mail for mail in release_mail if mail.recipients == ("kari@mail.example",))
    one_click = str(kari.message["List-Unsubscribe"]).strip("<>")
    request = urllib.request.Request(
        one_click, b"List-Unsubscribe=One-Click", method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200

    # Every line of every process's log is one JSON object (LOG_FORMAT=json, the default),
    # and none holds an address, a token, a password or the secret key.
    secrets = [
        *expected, "later@mail.example", "lazy@mail.example", "mail.example", PUBLISHER,
        PASSWORD, token, site.env["SECRET_KEY"], one_click.rsplit("/", 1)[1],
        *(confirm_link(mail).rsplit("/", 1)[1] for mail in site.sink.handler.received
          if "/confirm/" in mail.message.get_body(("plain",)).get_content()),
    ]  # fmt: skip
    lines: dict[str, list[dict[str, Any]]] = {}
    for name in ("web", "worker", "beat"):
        text = (site.workdir / f"{name}.log").read_text(encoding="utf-8")
        lines[name] = [json.loads(line) for line in text.splitlines() if line.strip()]
        assert lines[name], f"{name} logged nothing"
        for secret in secrets:
            assert secret not in text, f"{name}.log holds {secret[:12]}..."
        for line in lines[name]:
            assert {"timestamp", "level", "event"} <= set(line), line
    assert any("task_id" in line and "release_id" in line for line in lines["worker"])
    assert any(line.get("task") == "pressroom.send_confirmation" for line in lines["worker"])
