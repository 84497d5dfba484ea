"""Fan-out benchmark: the service's send rate against a bare SMTP loop to the same sink.

    python -m bench.fanout --subscribers 20000 [--database postgresql://...] [--runs 3]

One run:
1. an aiosmtpd sink that only counts messages, in a process of its own;
2. baseline: one process sends N prebuilt release-sized messages (text + HTML, about 7 KB) over
   one reused SMTP connection, timed until the sink has counted N;
3. the service: N confirmed subscribers imported with `flask subscribers import`, gunicorn,
   `celery worker` with its defaults and `celery beat`, a real Redis; one release published
   through the API, timed from the publish call until the sink has counted N;
4. prints N, both rates, their ratio, the peak resident memory of all service processes
   together, and how long planning the delivery rows took against sending.

Never part of `make test`: timings on a shared machine are for this command only.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import multiprocessing
import os
import re
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
PARAGRAPH = (
    "Den 12. april 1961 skøt Vostok 1 opp fra Bajkonur med Jurij Gagarin om bord. Etter 108 "
    "minutter og ett omløp rundt jorden landet han i Saratov-regionen, og verden var forandret. "
)
TITLE = "60 år siden Jurij Gagarin erobret verdensrommet"
SUMMARY = "Den 12. april 1961 ble Gagarin det første mennesket i rommet."
MAIL_FROM = "Pressroom <noreply@press.example>"
BODY_MARKDOWN = "\n\n".join(
    f"{'**' if n % 3 == 0 else ''}{PARAGRAPH * 2}{'**' if n % 3 == 0 else ''}" for n in range(4)
)


# --- The sink: counts, in a process of its own ------------------------------------------------


def _sink_main(port: int, counter: Any, ready: Any) -> None:
    from aiosmtpd.controller import Controller

    class Counting:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with counter.get_lock():
                counter.value += len(envelope.rcpt_tos)
            return "250 OK"

    controller = Controller(Counting(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        threading.Event().wait()
    finally:
        controller.stop()


@dataclass
class Sink:
    port: int
    counter: Any
    process: multiprocessing.Process

    @property
    def count(self) -> int:
        return int(self.counter.value)

    def reset(self) -> None:
        with self.counter.get_lock():
            self.counter.value = 0

    def wait_for(self, n: int, timeout: float, marks: list[float] | None = None) -> float:
        """The time at which the sink has counted n; raises on timeout. `marks` collects the
        times at which each further quarter of n was reached."""
        deadline = time.monotonic() + timeout
        quarter = 1
        while self.count < n:
            if marks is not None and quarter < 4 and self.count >= n * quarter / 4:
                marks.append(time.monotonic())
                quarter += 1
            if time.monotonic() > deadline:
                raise TimeoutError(f"the sink counted {self.count} of {n}")
            time.sleep(0.005)
        return time.monotonic()


@contextlib.contextmanager
def sink() -> Iterator[Sink]:
    context = multiprocessing.get_context("spawn")
    counter = context.Value("q", 0)
    ready = context.Event()
    port = free_port()
    process = context.Process(target=_sink_main, args=(port, counter, ready), daemon=True)
    process.start()
    if not ready.wait(30):
        raise RuntimeError("the sink did not start")
    try:
        yield Sink(port, counter, process)
    finally:
        process.terminate()
        process.join(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- Baseline: a bare SMTP loop -----------------------------------------------------------------


def prebuilt_messages(n: int) -> list[tuple[str, bytes]]:
    """N messages of exactly the kind the service sends for the benchmark's release (same
    template, body and size), built before the clock starts."""
    from service.domain.content import render_markdown
    from service.domain.emails import EmailRenderer
    from service.domain.mail_site import MailSite
    from service.domain.tokens import TokenSigner
    from service.models import Release
    from service.sending.messages import Composer

    now = datetime.now(UTC)
    release = Release(
        id=1,
        slug="gagarin",
        title=TITLE,
        summary=SUMMARY,
        body=BODY_MARKDOWN,
        body_html=render_markdown(BODY_MARKDOWN),
        language="nb",
        translations={},
        published_at=now,
    )
    site = MailSite("https://press.example", MAIL_FROM, "Pressroom", "releases.press.example")
    composer = Composer(EmailRenderer(), TokenSigner("bench-secret"), site)
    message = composer.release_message(release, "nb", now=now)
    return [
        (to, message.for_recipient(to, uuid.uuid4().hex))
        for to in (f"reader{i:06d}@bench.example" for i in range(n))
    ]


def baseline(the_sink: Sink, n: int) -> tuple[float, int]:
    messages = prebuilt_messages(n)
    the_sink.reset()
    started = time.monotonic()
    with smtplib.SMTP("127.0.0.1", the_sink.port) as connection:
        for to, data in messages:
            connection.sendmail("noreply@press.example", [to], data)
    finished = the_sink.wait_for(n, timeout=600)
    return n / (finished - started), len(messages[0][1])


# --- The service ------------------------------------------------------------------------------


@dataclass
class ServiceRun:
    rate: float
    peak_rss_mib: float
    rest_rss_mib: float
    planning_s: float
    total_s: float
    quarter_rates: list[float]


class MemoryWatch:
    """Peak of the summed resident memory of some process trees, sampled every 50 ms."""

    def __init__(self, roots: list[subprocess.Popen[bytes]]) -> None:
        self.roots = [psutil.Process(p.pid) for p in roots]
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def current(self) -> int:
        total = 0
        for root in self.roots:
            with contextlib.suppress(psutil.Error):
                for process in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += process.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.current())

    def __enter__(self) -> MemoryWatch:
        self.peak = self.current()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def database(url: str | None, workdir: Path) -> Iterator[str]:
    """SQLite in the work folder, or a schema of its own in the given PostgreSQL."""
    if not url:
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    import psycopg

    schema = f"pressroom_bench_{uuid.uuid4().hex[:10]}"
    plain = re.sub(r"^postgres(ql)?(\+psycopg)?://", "postgresql://", url)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        separator = "&" if "?" in plain else "?"
        yield f"{plain}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    from service.embedded_redis import EmbeddedRedis

    server = EmbeddedRedis().start()
    try:
        yield server.url
    finally:
        server.stop()


def run_service(
    the_sink: Sink, n: int, database_url: str | None, worker_options: list[str]
) -> ServiceRun:
    with (
        tempfile.TemporaryDirectory(prefix="pressroom-bench-") as tmp,
        redis_url() as redis,
        database(database_url, Path(tmp)) as db_url,
    ):
        workdir = Path(tmp)
        web_port = free_port()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "SECRET_KEY": "bench-secret-key-0123456789abcdef",
            "DATABASE_URL": db_url,
            "REDIS_URL": redis,
            "SMTP_URL": f"smtp://127.0.0.1:{the_sink.port}",
            "BASE_URL": "https://press.example",
            "MAIL_FROM": MAIL_FROM,
            "CELERY_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
        }

        def flask(*args: str, stdin: str | None = None) -> str:
            return subprocess.run(
                [str(BIN / "flask"), "--app", "service", *args],
                env=env,
                cwd=workdir,
                input=stdin,
                capture_output=True,
                text=True,
                check=True,
            ).stdout

        flask("db", "upgrade")
        csv = workdir / "readers.csv"
        csv.write_text(
            "email,language\n" + "".join(f"reader{i:06d}@bench.example,nb\n" for i in range(n))
        )
        flask("subscribers", "import", str(csv), "--confirmed", "--consent-note", "benchmark")
        flask("publisher", "create", "bench@press.example", "--password-stdin", stdin="x" * 16)
        token = flask("token", "create", "bench@press.example").strip()

        logs = {name: open(workdir / f"{name}.log", "wb") for name in ("web", "worker", "beat")}  # noqa: SIM115
        commands = {
            "web": [str(BIN / "gunicorn"), "service:create_app()", f"--bind=127.0.0.1:{web_port}"],
            "worker": [
                str(BIN / "celery"), "-A", "workers", "worker", "--loglevel=WARNING",
                *worker_options,
            ],
            "beat": [
                str(BIN / "celery"), "-A", "workers", "beat", "--loglevel=WARNING",
                f"--schedule={workdir / 'beat'}",
            ],
        }  # fmt: skip
        processes = [
            subprocess.Popen(
                commands[name], env=env, cwd=ROOT, stdout=logs[name], stderr=logs[name]
            )
            for name in commands
        ]
        try:
            base = f"http://127.0.0.1:{web_port}"
            _wait_http(base + "/")
            time.sleep(3)  # the worker's pool is up
            watch = MemoryWatch(processes)
            rest = watch.current()
            the_sink.reset()
            with watch:
                started = time.monotonic()
                release = _api(
                    base,
                    "/api/v1/releases",
                    token,
                    {
                        "title": TITLE,
                        "summary": SUMMARY,
                        "body": BODY_MARKDOWN,
                        "language": "nb",
                        "publish": True,
                    },
                )
                marks = [started]
                finished = the_sink.wait_for(n, timeout=max(600, n / 20), marks=marks)
                marks.append(finished)
            planning = _planning_seconds(db_url, int(release["id"]))
            return ServiceRun(
                rate=n / (finished - started),
                peak_rss_mib=watch.peak / 2**20,
                rest_rss_mib=rest / 2**20,
                planning_s=planning,
                total_s=finished - started,
                quarter_rates=[n / 4 / (b - a) for a, b in itertools.pairwise(marks)],
            )
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
            for log in logs.values():
                log.close()


def _wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _api(base: str, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        base + path,
        json.dumps(body).encode(),
        {"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def _planning_seconds(database_url: str, release_id: int) -> float:
    """From the start of the send to the last delivery row planned, from the release's own
    timestamps."""
    from sqlalchemy import create_engine, text

    from service.config import normalize_database_url

    engine = create_engine(normalize_database_url(database_url))
    with engine.connect() as connection:
        started, planned = connection.execute(
            text("SELECT send_started_at, planned_at FROM releases WHERE id = :id"),
            {"id": release_id},
        ).one()
    engine.dispose()

    def parse(value: Any) -> datetime:
        return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))

    return (parse(planned) - parse(started)).total_seconds()


# --- The command ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__)
    parser.add_argument("--subscribers", "-n", type=int, default=20_000)
    parser.add_argument("--database", help="a PostgreSQL URL (default: SQLite in a temp dir)")
    parser.add_argument("--runs", type=int, default=1, help="report the median of this many")
    parser.add_argument(
        "--worker-option",
        action="append",
        default=[],
        help="passed to `celery worker`, e.g. --worker-option=--concurrency=2 (default: none)",
    )
    args = parser.parse_args(argv)
    n = args.subscribers
    kind = "PostgreSQL" if args.database else "SQLite"
    print(f"Fan-out to {n:,} subscribers on {kind}, {os.cpu_count()} CPUs", flush=True)
    results: list[tuple[float, ServiceRun]] = []
    with sink() as the_sink:
        for run in range(1, args.runs + 1):
            base_rate, size = baseline(the_sink, n)
            service = run_service(the_sink, n, args.database, args.worker_option)
            ratio = service.rate / base_rate
            results.append((base_rate, service))
            print(
                f"  run {run}: baseline {base_rate:,.0f} msg/s ({size:,} B each), "
                f"service {service.rate:,.0f} msg/s, ratio {ratio:.2f}, "
                f"peak RSS {service.peak_rss_mib:,.0f} MiB (at rest {service.rest_rss_mib:,.0f}), "
                f"planning {service.planning_s:.1f} s of {service.total_s:.1f} s, "
                "by quarter " + " / ".join(f"{rate:,.0f}" for rate in service.quarter_rates),
                flush=True,
            )
    base_median = statistics.median(r[0] for r in results)
    service_median = statistics.median(r[1].rate for r in results)
    print(
        f"N={n} db={kind} baseline={base_median:.0f} service={service_median:.0f} "
        f"ratio={statistics.median(r[1].rate / r[0] for r in results):.2f} "
        f"peak_rss_mib={statistics.median(r[1].peak_rss_mib for r in results):.0f} "
        f"planning_s={statistics.median(r[1].planning_s for r in results):.1f} "
        f"total_s={statistics.median(r[1].total_s for r in results):.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
