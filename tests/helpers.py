"""Running the production entry points (CONTRACT §2) as an operator would: separate processes
with a clean environment, stopped the way a service manager stops them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask

from service.config import Settings
from tests.conftest import ROOT

BIN = Path(sys.executable).parent


def clean_env(**values: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SSL_CERT_FILE")}
    return {**keep, **values}


def start_gunicorn(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """`gunicorn 'service:create_app()'` as the contract names it, from the project folder
    (so that gunicorn.conf.py applies), quiet."""
    return subprocess.Popen(
        [str(BIN / "gunicorn"), "service:create_app()", f"--bind=127.0.0.1:{port}"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(processes: list[subprocess.Popen[bytes]], timeout: float = 20.0) -> None:
    """SIGTERM, as a service manager sends it; SIGKILL for what does not stop in time."""
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_for_http(url: str, timeout: float = 30.0) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@contextmanager
def settings_changed(app: Flask, **changes: Any) -> Iterator[Settings]:
    """The app (and the workers sharing it) runs with `changes` to its settings inside the
    block, and with its own settings again after it; yields the changed settings."""
    settings: Settings = app.extensions["pressroom.settings"]
    app.extensions["pressroom.settings"] = changed = settings.replace(**changes)
    try:
        yield changed
    finally:
        app.extensions["pressroom.settings"] = settings
