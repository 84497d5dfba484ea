"""`pressroom run` and `make run` (issue 10, item 16): a port of one's choosing, the banner
only once web, worker and beat all answer, and Ctrl-C ends it with exit status 0, so that
make reports no error."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from service.embedded_redis import free_port

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]
BANNER = "Pressroom is running"
# The test's virtualenv counts as installed (-o: `make test` installed it), so that make goes
# straight to the launcher.
MAKE = ["make", "-f", str(ROOT / "Makefile"), "-o", f"{sys.prefix}/.installed-run"]


def clean_env() -> dict[str, str]:
    """No DATABASE_URL, REDIS_URL or SMTP_URL: the launcher starts its own, as on a laptop;
    no MAKEFLAGS of a `make test` around us."""
    keep = ("PATH", "HOME", "LANG", "SSL_CERT_FILE")
    return {k: v for k, v in os.environ.items() if k in keep}


def start(command: list[str], cwd: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """In a session of its own, so that SIGINT can go to the whole group, as a terminal's
    Ctrl-C does; stdout and stderr in one file, in the order written."""
    log = cwd / "output.log"
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return process, log


def wait_for_banner(process: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if BANNER in text:
            time.sleep(0.5)  # the rest of the banner
            return log.read_text(errors="replace")
        assert process.poll() is None, text[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"no banner in {timeout}s:\n{log.read_text(errors='replace')[-3000:]}")


def ctrl_c(process: subprocess.Popen[bytes], timeout: float = 60) -> int:
    os.killpg(process.pid, signal.SIGINT)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        raise


def test_the_banner_waits_for_every_part_and_ctrl_c_exits_0(tmp_path: Path) -> None:
    port = free_port()
    process, log = start([str(BIN / "pressroom"), "run", "--port", str(port)], tmp_path)
    try:
        text = wait_for_banner(process, log)
        before = text[: text.index(BANNER)]
        # The worker consumes (and so answers a ping), beat ticks, the web server listens.
        assert " ready." in before, before[-3000:]
        assert "beat: Starting..." in before, before[-3000:]
        assert f"Listening at: http://127.0.0.1:{port}" in before, before[-3000:]
        assert f"http://127.0.0.1:{port}/" in text[text.index(BANNER) :]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert page.status == 200
        assert list(tmp_path.glob("instance/celerybeat-schedule*"))
    finally:
        code = ctrl_c(process)
    output = log.read_text(errors="replace")
    assert code == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]


def test_make_run_takes_a_port_and_ctrl_c_is_no_error(tmp_path: Path) -> None:
    port = free_port()
    venv = Path(sys.prefix)
    # In tmp_path, so that instance/ is the test's own.
    process, log = start([*MAKE, "run", f"VENV={venv}", f"PORT={port}"], tmp_path)
    try:
        text = wait_for_banner(process, log)
        assert f"--port {port}" in text.splitlines()[0], text.splitlines()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert page.status == 200
    finally:
        code = ctrl_c(process)
    output = log.read_text(errors="replace")
    # make, hit by Ctrl-C itself, ends by its own SIGINT; the launcher's 0 makes it say nothing.
    assert code in (0, -signal.SIGINT), output[-3000:]
    complaints = [line for line in output.splitlines() if re.match(r"make(\[\d+\])?: \*\*\*", line)]
    assert complaints == [], output[-3000:]  # e.g. "make: *** [Makefile:22: run] Error 1"
    assert "Traceback" not in output, output[-3000:]


def test_make_run_passes_no_port_unless_given() -> None:
    def dry_run(*args: str) -> str:
        return subprocess.run(
            [*MAKE, "-n", "run", f"VENV={sys.prefix}", *args],
            capture_output=True,
            text=True,
            check=True,
            env=clean_env(),
        ).stdout

    assert dry_run().strip().endswith("pressroom run")
    assert dry_run("PORT=8100").strip().endswith("pressroom run --port 8100")


def test_sigterm_alone_stops_the_launcher_cleanly(tmp_path: Path) -> None:
    """A service manager sends SIGTERM to the launcher only: it stops its parts, exits 0."""
    port = free_port()
    process, log = start([str(BIN / "pressroom"), "run", "--port", str(port)], tmp_path)
    try:
        wait_for_banner(process, log)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    output = log.read_text(errors="replace")
    assert code == 0, output[-3000:]
    time.sleep(1)
    leftovers = subprocess.run(
        ["pgrep", "-s", str(process.pid)], capture_output=True, text=True
    ).stdout.split()
    assert leftovers == [], output[-3000:]


def test_ctrl_c_before_the_banner_exits_0_too(tmp_path: Path) -> None:
    """Ctrl-C while the parts are still starting: no banner, no traceback, status 0."""
    process, log = start([str(BIN / "pressroom"), "run", "--port", str(free_port())], tmp_path)
    deadline = time.monotonic() + 120
    while "beat" not in log.read_text(errors="replace"):
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)
    code = ctrl_c(process)
    output = log.read_text(errors="replace")
    assert code == 0, output[-3000:]
    assert BANNER not in output and "Traceback" not in output, output[-3000:]
