"""The domain stands on its own: each module of service/domain (and of service/sending, the send
pipeline, once it exists) imports without Flask or Celery, so it can be used and tested with
neither. Each module is imported in a fresh interpreter, and sys.modules is read afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORK_FREE = ("service/domain", "service/sending")
FRAMEWORKS = ("flask", "celery", "kombu")

PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
loaded = sorted(
    name for name in sys.modules
    if name.split(".")[0] in {frameworks!r} or name.startswith("flask_")
)
print(json.dumps(loaded))
"""


def framework_free_modules() -> list[str]:
    """Every module under FRAMEWORK_FREE that exists, as a dotted name."""
    names = []
    for folder in FRAMEWORK_FREE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_the_framework_free_packages_are_found() -> None:
    assert "service.domain.subscriptions" in framework_free_modules()


@pytest.mark.parametrize("module", framework_free_modules())
def test_a_domain_module_imports_without_flask_or_celery(module: str) -> None:
    loaded = run_probe(PROBE.format(frameworks=set(FRAMEWORKS)), module)
    assert loaded == [], f"{module} loads a framework"


def run_probe(probe: str, *args: str) -> object:
    """What `probe` printed last as JSON, run in a fresh interpreter at the project root."""
    answer = subprocess.run(
        [sys.executable, "-c", probe, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    return json.loads(answer.stdout.splitlines()[-1])


BEAT_PROBE = """
import json, os, sys
from click.testing import CliRunner
from celery.bin.celery import celery

os.environ.update(REDIS_URL="redis://127.0.0.1:1/0", SECRET_KEY="beat-probe-key-not-for-production")
# `celery -A workers beat --help`: the group callback loads workers.app for the beat subcommand.
result = CliRunner().invoke(celery, ["-A", "workers", "beat", "--help"])
assert result.exit_code == 0, result.output
import workers
assert workers.app.main == "service", workers.app.main
loaded = sorted(n for n in sys.modules if n.split(".")[0] in {"flask", "psycopg", "workers"}
                or n.startswith("sqlalchemy.orm"))
print(json.dumps(loaded))
"""


def test_beat_loads_neither_the_flask_app_nor_the_database() -> None:
    """`celery -A workers beat` only sends the sweep by name: the app it loads is built from
    the settings alone (about 50 MiB less at rest than with the Flask app, issue 12)."""
    assert run_probe(BEAT_PROBE) == ["workers", "workers.shutdown"]
