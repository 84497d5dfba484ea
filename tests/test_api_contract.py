"""The OpenAPI document is the contract: schemathesis, with every check, against a real gunicorn.

Every operation is fuzzed with data the schema allows (which must be accepted) and data it
forbids (which must be refused with a 4xx), and every answer must match the documented
responses: status codes, content types and bodies. Any violation or 5xx fails the test, with
schemathesis's own report (and a curl line to reproduce each failure) as the message.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask_migrate import upgrade

from service import create_app
from service.app_state import get_database
from service.embedded_redis import free_port
from service.mailsink import MailSink
from tests.conftest import ROOT, make_settings
from tests.helpers import BIN, clean_env, start_gunicorn, stop, wait_for_http
from tests.pipeline.helpers import api_token

SEED = 20261130
MAX_EXAMPLES = 10


@pytest.fixture
def served_api(tmp_path: Path, redis_url: str) -> Iterator[tuple[str, str]]:
    """The app under gunicorn with its own SQLite database; yields (base URL, API token)."""
    database_url = f"sqlite:///{tmp_path}/pressroom.db"
    sink = MailSink().start()
    settings = make_settings(database_url, redis_url, sink.url)
    setup = create_app(settings)
    with setup.app_context():
        upgrade()
    token = api_token(setup)
    with setup.app_context():
        get_database().dispose()
    env = clean_env(
        SECRET_KEY="schemathesis-test-secret-key",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        SMTP_URL=sink.url,
        BASE_URL="https://press.example",
        # Publishing queues tasks that no worker here consumes: a queue of this test's own.
        CELERY_QUEUE=f"api-contract-{uuid.uuid4().hex[:8]}",
        SIGNUP_RATE_LIMIT="100000/minute",
        ADDRESS_RATE_LIMIT="100000/minute",
    )
    port = free_port()
    server = start_gunicorn(env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/api/v1/openapi.json")
        yield base, token
    finally:
        stop([server])
        sink.stop()


@pytest.mark.timeout(300)
def test_the_running_api_keeps_every_promise_of_its_openapi_document(
    served_api: tuple[str, str], tmp_path: Path
) -> None:
    base, token = served_api
    result = subprocess.run(
        [
            str(BIN / "schemathesis"),
            f"--config-file={ROOT / 'tests' / 'schemathesis.toml'}",
            "run",
            f"{base}/api/v1/openapi.json",
            "--checks=all",
            f"--seed={SEED}",
            f"--max-examples={MAX_EXAMPLES}",
            "--workers=1",
            "--generation-database=none",
            "--no-color",
            "--header",
            f"Authorization: Bearer {token}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.api_contract_hooks",
            "PYTHONPATH": str(ROOT),
        },
        timeout=280,
    )
    assert result.returncode == 0, readable(result.stdout + result.stderr)


def readable(report: str, width: int = 400, lines: int = 300) -> str:
    """Schemathesis's report from its failures on, each line cut short: a failing body can be a
    megabyte on one line."""
    start = report.find("FAILURES")
    kept = [line[:width] for line in report[max(start, 0) :].splitlines() if line.strip()]
    return "\n".join(kept[-lines:])
