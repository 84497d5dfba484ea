"""A private PgBouncer in transaction pooling mode in front of the test PostgreSQL
(TEST_DATABASE_URL), and a database of its own behind it.

Debian's `pgbouncer` package (apt-get install pgbouncer; `.ci/run` installs it as root) may also
start a system PgBouncer on port 6432: this one has its own configuration in a temporary folder,
listens on a free port of 127.0.0.1 only and has no Unix socket. PgBouncer refuses to run as
root: as root it is started with `-u postgres` (or `nobody`), after reading its configuration.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import URL, make_url

from service.config import normalize_database_url
from service.embedded_redis import free_port

PGBOUNCER = shutil.which("pgbouncer") or next(
    (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None
)
# max_prepared_statements came with PgBouncer 1.21 (1.22 turned it on by default: 200): at 0 it
# keeps no track of prepared statements, as every version before, so they do break here.
TRACKS_PREPARED_STATEMENTS = (1, 21)


def skip_unless_available() -> None:
    """Skip the calling test, saying what it needs, unless PgBouncer and PostgreSQL are here."""
    if not os.environ.get("TEST_DATABASE_URL"):
        pytest.skip("PgBouncer tests need PostgreSQL: set TEST_DATABASE_URL")
    if PGBOUNCER is None:
        pytest.skip(
            "PgBouncer tests need the pgbouncer binary: `sudo apt-get install pgbouncer` "
            "(.ci/run installs it when run as root)"
        )


def version() -> tuple[int, int]:
    """(major, minor) of the pgbouncer binary, from `pgbouncer --version` ("PgBouncer 1.18.0")."""
    assert PGBOUNCER is not None
    output = subprocess.run(
        [PGBOUNCER, "--version"], capture_output=True, text=True, timeout=10
    ).stdout
    found = re.search(r"PgBouncer (\d+)\.(\d+)", output)
    assert found, f"no version in {output!r}"
    return int(found.group(1)), int(found.group(2))


@contextlib.contextmanager
def fresh_database(prefix: str) -> Iterator[URL]:
    """A new, empty database `prefix_<12 hex>` on TEST_DATABASE_URL's server (as its URL),
    dropped afterwards. Not a schema, as tests/databases.py makes: a schema is chosen through
    the `options` startup parameter, which PgBouncer does not pass on (and a session's
    search_path would not follow a transaction to another server connection anyway)."""
    base = make_url(normalize_database_url(os.environ["TEST_DATABASE_URL"]))
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def transaction_pooler(database: URL, folder: Path, *, pool_size: int) -> Iterator[URL]:
    """PgBouncer with pool_mode = transaction and `pool_size` server connections in front of
    `database`; yields the URL to reach `database` through it. Clients are trusted (as the
    test PostgreSQL trusts them); PgBouncer logs in to PostgreSQL as the URL's user."""
    assert PGBOUNCER is not None
    port = free_port()
    user = database.username or "postgres"
    server = f"host={database.host or '127.0.0.1'} port={database.port or 5432} user={user}"
    if database.password:
        server += f" password={database.password}"
    tracking = "max_prepared_statements = 0\n" if version() >= TRACKS_PREPARED_STATEMENTS else ""
    (folder / "userlist.txt").write_text(f'"{user}" ""\n')
    config = folder / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"{database.database} = {server}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {folder / 'userlist.txt'}\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {pool_size}\n"
        "min_pool_size = 0\n"
        "reserve_pool_size = 0\n"
        "max_client_conn = 500\n"
        f"{tracking}"
    )
    command = [PGBOUNCER, str(config)]
    if os.geteuid() == 0:  # "PgBouncer should not run as root"
        command[1:1] = ["-u", _unprivileged_user()]
    log = (folder / "pgbouncer.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, process, folder / "pgbouncer.log")
        yield database.set(host="127.0.0.1", port=port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _unprivileged_user() -> str:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name).pw_name
    pytest.skip("PgBouncer will not run as root, and there is no postgres or nobody user")


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer ended at start: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"pgbouncer did not listen in 20 s: {log.read_text()[-2000:]}")
        time.sleep(0.05)
