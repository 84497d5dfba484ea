"""deploy/compose.yaml: valid for Debian's docker-compose (1.29), and the shape issue 14 asks
for: web, a scalable worker, one beat, PostgreSQL, Redis with AOF and Mailpit, all Pressroom
services configured from one env file."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.deploy.helpers import (
    COMPOSE_FILE,
    PRESSROOM_SERVICES,
    command,
    compose_services,
    service_env,
)
from tests.pipeline.helpers import SHUTDOWN_BUDGET


def resolved_by_docker_compose() -> dict[str, Any]:
    """`docker-compose -f deploy/compose.yaml config`: what compose itself makes of the file."""
    if shutil.which("docker-compose") is None:
        pytest.skip(
            "docker-compose not found; install it with `sudo apt-get install docker-compose` "
            "(.ci/run does, as root)"
        )
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE_FILE), "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return dict(yaml.safe_load(result.stdout))


def test_docker_compose_accepts_the_file_and_reads_the_env_file_as_the_tests_do() -> None:
    services = resolved_by_docker_compose()["services"]
    assert set(services) == {*PRESSROOM_SERVICES, "postgres", "redis", "mailpit"}
    ours = compose_services()
    for name in PRESSROOM_SERVICES:
        assert services[name]["environment"] == service_env(ours[name]), name
        assert [str(arg) for arg in services[name]["command"]] == command(ours[name]), name
    assert services["redis"]["command"] == ["redis-server", "--appendonly", "yes"]


def test_workers_scale_and_beat_does_not() -> None:
    services = compose_services()
    worker, beat = services["worker"], services["beat"]
    # `--scale worker=4` needs containers compose may name and no host port they would share.
    assert "container_name" not in worker and "ports" not in worker
    assert "replicas" not in worker.get("deploy", {})
    # A fixed name: compose refuses to run a second one.
    assert beat["container_name"]
    assert command(worker)[:4] == ["celery", "-A", "workers", "worker"]
    assert command(beat)[:4] == ["celery", "-A", "workers", "beat"]


def test_a_worker_gets_time_for_its_warm_shutdown() -> None:
    worker = compose_services()["worker"]
    assert worker.get("stop_signal", "SIGTERM") == "SIGTERM"
    value = worker["stop_grace_period"]
    assert value.endswith("s") and float(value[:-1]) > SHUTDOWN_BUDGET


def test_every_pressroom_service_reads_the_one_env_file_and_starts_after_the_migrations() -> None:
    services = compose_services()
    assert {services[name]["env_file"] for name in PRESSROOM_SERVICES} == {"pressroom.env"}
    assert command(services["migrate"]) == ["flask", "--app", "service", "db", "upgrade"]
    for name in ("web", "worker", "beat"):
        after = services[name]["depends_on"]
        assert after["migrate"]["condition"] == "service_completed_successfully", name
        assert after["postgres"]["condition"] == after["redis"]["condition"] == "service_healthy"


def test_redis_keeps_an_append_only_file_and_postgres_a_volume() -> None:
    services = compose_services()
    redis = command(services["redis"])
    assert redis[redis.index("--appendonly") + 1] == "yes"
    assert any(volume.endswith(":/data") for volume in services["redis"]["volumes"])
    assert any(
        volume.endswith(":/var/lib/postgresql/data") for volume in services["postgres"]["volumes"]
    )
    assert services["mailpit"]["image"].startswith("axllent/mailpit:")
    env = service_env(services["web"])
    assert env["SMTP_URL"] == "smtp://mailpit:1025"
    assert "@postgres:5432/" in env["DATABASE_URL"] and "//redis:6379" in env["REDIS_URL"]
