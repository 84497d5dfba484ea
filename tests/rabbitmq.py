"""RabbitMQ for the tests that run on it too: a virtual host of its own on the machine's server
(127.0.0.1:5672, as here and on CI), or a private node a test may stop and start again.

Skips, with the package to install, when no server answers or its tools are missing. The
machine's server is shared with other tests and processes: it is never stopped here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from kombu import Connection

from service.embedded_redis import free_port

HOST, PORT = "127.0.0.1", 5672
APT = "apt package rabbitmq-server; started with `rabbitmq-server -detached`"


def answers(host: str = HOST, port: int = PORT, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _tool(name: str) -> str:
    found = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/lib/rabbitmq/bin/{name}") if Path(p).exists()),
        None,
    )
    if found is None:
        pytest.skip(f"{name} is not installed ({APT})")
    return found


def _rabbitmqctl(*args: str) -> None:
    subprocess.run([_tool("rabbitmqctl"), *args], check=True, capture_output=True, timeout=60)


@contextlib.contextmanager
def shared_vhost() -> Iterator[str]:
    """An amqp:// URL of a virtual host made for the caller on the machine's RabbitMQ (guest
    may use it), deleted afterwards with everything in it."""
    if not answers():
        pytest.skip(f"RabbitMQ does not answer on {HOST}:{PORT} ({APT})")
    vhost = f"pressroom-test-{uuid.uuid4().hex[:8]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@{HOST}:{PORT}/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)


class PrivateRabbitMQ:
    """A RabbitMQ node of the test's own (its name, ports and data in `workdir`), run in the
    foreground as a child process, so that it can be killed and started again on the same port
    with the same data, as a broker restarting under a running deployment."""

    def __init__(self, workdir: Path) -> None:
        # The script itself, not /usr/sbin's wrapper, which runs it as the rabbitmq user (who
        # may not write `workdir`) from /var/lib/rabbitmq.
        script = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
        self.server = str(script) if script.exists() else _tool("rabbitmq-server")
        if not answers():  # the machine's node also runs epmd, which this node registers with
            pytest.skip(f"RabbitMQ does not answer on {HOST}:{PORT} ({APT})")
        self.workdir = workdir
        self.port = free_port()
        self.url = f"amqp://guest:guest@{HOST}:{self.port}//"
        self._process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {HOST}:{self.port}\nloopback_users.guest = true\n"
        )
        (workdir / "enabled_plugins").write_text("[].\n")  # no management port to collide on
        (workdir / "rabbitmq-env.conf").write_text("")  # not the machine's node's settings
        self._env = {
            **os.environ,
            "RABBITMQ_NODENAME": f"pressroom-test-{uuid.uuid4().hex[:8]}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": HOST,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_CONF_ENV_FILE": str(workdir / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(workdir / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(workdir / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(workdir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(workdir / "log"),
            "RABBITMQ_PID_FILE": str(workdir / "pid"),
            "ERL_EPMD_ADDRESS": HOST,
            "ERL_CRASH_DUMP": str(workdir / "erl_crash.dump"),
            "HOME": str(workdir),  # its Erlang cookie, made at first start
        }

    def start(self, timeout: float = 90.0) -> PrivateRabbitMQ:
        """Starts the node and returns once it takes AMQP connections; raises RuntimeError
        (with its log's end) when it does not within `timeout` seconds."""
        log = open(self.workdir / "server.log", "ab")  # noqa: SIM115 - closed with the process
        self._process = subprocess.Popen(
            [self.server],
            env=self._env,
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # killed as a group: the script, erl and its helpers
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not self._takes_connections():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the private RabbitMQ did not start:\n{self.log()}")
            time.sleep(0.2)
        return self

    def _takes_connections(self) -> bool:
        if not answers(HOST, self.port, timeout=0.5):
            return False
        try:
            with Connection(self.url, connect_timeout=2) as connection:
                connection.ensure_connection(max_retries=1)
            return True
        except Exception:
            return False

    def kill(self) -> None:
        """SIGKILL to the whole node, as a crashed or powered-off broker: no clean shutdown."""
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=30)
        self._process = None

    def log(self) -> str:
        return (self.workdir / "server.log").read_text(errors="replace")[-3000:]


def queue_types(url: str) -> dict[str, str]:
    """Each queue's type (classic, quorum) in the virtual host of `url`, by name."""
    vhost = unquote(urlsplit(url).path[1:]) or "/"
    listed = subprocess.run(
        [
            _tool("rabbitmqctl"),
            "list_queues",
            "-q",
            "--no-table-headers",
            "-p",
            vhost,
            "name",
            "type",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return dict(line.split("\t") for line in listed.splitlines() if "\t" in line)
