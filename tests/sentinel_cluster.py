"""A Redis primary, a replica and three sentinels, from Debian's redis-server, for failover tests.

Each server runs in the foreground as a child of the test, on a free loopback port, with its
files in a directory of the test's. `kill_primary` SIGKILLs the primary, as a machine dying
would; the sentinels then agree it is down (after DOWN_AFTER_MS) and promote the replica.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
MASTER = "pressroom-primary"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 6000


def require_redis_server() -> None:
    if not Path(REDIS_SERVER).exists():
        pytest.skip(
            "the Sentinel failover tests need Debian's redis-server (`apt-get install "
            "redis-server`; .ci/run installs it as root)"
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SentinelCluster:
    """A primary, a replica and three sentinels with quorum 2, started by `start`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.primary_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{MASTER}"

    def start(self) -> SentinelCluster:
        self._server("primary", self.primary_port)
        self._server(
            "replica", self.replica_port, "--replicaof", "127.0.0.1", str(self.primary_port)
        )
        self._wait_until_replicating()
        for number, port in enumerate(self.sentinel_ports, 1):
            self._sentinel(f"sentinel{number}", port)
        for port in self.sentinel_ports:
            self._wait(lambda port=port: self._sentinel_sees_everyone(port), "sentinels agree")
        return self

    def _server(self, name: str, port: int, *options: str) -> None:
        directory = self.workdir / name
        directory.mkdir(parents=True, exist_ok=True)
        self._run(name, [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1",
                         "--save", "", "--appendonly", "no", "--dir", str(directory),
                         *options])  # fmt: skip
        self._wait(lambda: _pings(port), f"{name} answers")

    def _sentinel(self, name: str, port: int) -> None:
        directory = self.workdir / name
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "sentinel.conf"  # Sentinel rewrites it: one file each
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {self.primary_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {MASTER} 1\n"
        )
        self._run(name, [REDIS_SERVER, str(config), "--sentinel"])
        self._wait(lambda: _pings(port), f"{name} answers")

    def _run(self, name: str, command: list[str]) -> None:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def _wait_until_replicating(self) -> None:
        replica = redis.Redis(port=self.replica_port)
        self._wait(
            lambda: replica.info("replication").get("master_link_status") == "up",
            "the replica follows the primary",
        )

    def _sentinel_sees_everyone(self, port: int) -> bool:
        sentinel = redis.Redis(port=port, decode_responses=True)
        state = sentinel.execute_command("SENTINEL", "MASTER", MASTER)
        fields = dict(zip(state[::2], state[1::2], strict=True))
        return int(fields["num-slaves"]) >= 1 and int(fields["num-other-sentinels"]) >= 2

    def primary_address(self) -> tuple[str, int]:
        """Where the sentinels say the primary is now."""
        sentinel = redis.Redis(port=self.sentinel_ports[0], decode_responses=True)
        host, port = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
        return host, int(port)

    def kill_primary(self) -> None:
        primary = self.processes["primary"]
        primary.kill()
        primary.wait(timeout=10)

    def wait_for_promotion(self, timeout: float = 60.0) -> None:
        self._wait(
            lambda: (
                self.primary_address()[1] == self.replica_port
                and redis.Redis(port=self.replica_port).info("replication")["role"] == "master"
            ),
            "a sentinel-promoted replica",
            timeout,
        )

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.parent.name}/{path.name}\n{path.read_text(errors='replace')[-2000:]}"
            for path in sorted(self.workdir.glob("*.log"))
        )

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)

    def _wait(self, check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(redis.RedisError, KeyError, ValueError):
                if check():
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not in {timeout} s\n{self.logs()}")
            time.sleep(0.05)


def _pings(port: int) -> bool:
    return bool(redis.Redis(port=port, socket_timeout=1).ping())
