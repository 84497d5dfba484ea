"""The systemd units under deploy/ start what CONTRACT §2 names and stop it warmly."""

from __future__ import annotations

import configparser
import shlex

from tests.conftest import ROOT
from tests.pipeline.helpers import SHUTDOWN_BUDGET


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(ROOT / "deploy" / "systemd" / name)
    return parser


def test_the_worker_unit_runs_celery_and_leaves_time_for_a_warm_shutdown() -> None:
    service = unit("pressroom-worker.service")["Service"]
    command = shlex.split(service["ExecStart"])
    assert command[0].endswith("/celery") and command[1:4] == ["-A", "workers", "worker"]
    assert service["KillSignal"] == "SIGTERM"
    assert service["KillMode"] == "control-group"  # every process gets SIGTERM: that must hold
    assert int(service["TimeoutStopSec"]) > SHUTDOWN_BUDGET


def test_the_beat_unit_runs_beat() -> None:
    command = shlex.split(unit("pressroom-beat.service")["Service"]["ExecStart"])
    assert command[1:4] == ["-A", "workers", "beat"]
