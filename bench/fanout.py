"""Fan-out benchmark: the service's send rate against bare SMTP connections to the same sink.

    python -m bench.fanout --subscribers 20000 [--database postgresql://...] [--runs 3]
        [--relay-latency-ms 20] [--raw-connections 64] [--worker-option=--concurrency=2]
        [--service-env SMTP_CONNECTIONS=32 ...]

Each run is a raw round then a service round (--runs R: raw, service, raw, service, ...):
1. an aiosmtpd sink that only counts messages, in a process of its own, started once. With
   --relay-latency-ms MS it waits MS milliseconds (asyncio.sleep: the other sessions go on)
   before its reply to each MAIL, RCPT and end of DATA, as a relay some way off would; EHLO,
   the 354 to DATA and QUIT are answered at once. The wait is per command, served one command
   after another within a session, so it models a relay's time per reply: PIPELINING (which
   aiosmtpd does not advertise) would not shorten it;
2. raw: N prebuilt release-sized messages (text + HTML, about 7 KB, made by the service's own
   Composer) sent over K bare smtplib connections at once (--raw-connections, default 4),
   connection j sending messages j, j+K, j+2K, ...; timed from the go (the senders are
   already forked and waiting, the connections not yet open) until the sink has counted N.
   Where they run: K <= 8 connections get a process each (at 0 ms a sender is CPU-bound, and
   K threads in one process would share one GIL); above 8 the K connections are threads
   spread evenly over 8 processes (64 connections at 20 ms mostly wait, and 8 processes
   still give a 0 ms run every core). The processes are forked after the messages are built,
   so they share them rather than building or receiving their own;
3. the service: N confirmed subscribers imported with `flask subscribers import`, gunicorn,
   `celery worker` with its defaults (plus --worker-option) and `celery beat`, with the
   environment the bench builds (plus --service-env NAME=VALUE, where {sink} in VALUE is the
   sink's smtp://127.0.0.1:PORT), a real Redis; one release published through the API, timed
   from the publish call until the sink has counted N;
4. prints per run and as medians: both rates and their ratio (service / raw); the service's
   memory, being web, gunicorn's workers, the celery worker and its pool, and beat: at rest
   (before the publish) as the sum of RSS and the sum of PSS (RSS counts the pages forked
   processes share once per process; PSS divides each shared page between its sharers, so it
   is the honest total; Linux only), and the peak of the summed RSS during the send (sampled
   every 50 ms); the CPU time (user + system) all service processes spent per message, from
   just before the publish until the sink has counted N, including their children that ended
   meanwhile; how long planning the delivery rows took against sending; the rate by quarter.
   Beside them, not part of the service's figures: the raw senders' CPU per message, the
   sink's (for both rounds: on a small machine the sink's own CPU bounds both rates), and the
   embedded Redis's during the service's round (none with REDIS_URL set).

The last line is one machine-readable summary of medians (key=value, space-separated; the raw
rate keeps its earlier key, baseline=; a figure that could not be read is na).

Never part of `make test`: timings on a shared machine are for this command only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import multiprocessing
import os
import queue
import re
import resource
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
from collections.abc import Callable, Iterator
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
RAW_PROCESSES_MAX = 8  # up to this many connections, one process each; beyond, threads in 8
SINK_PLACEHOLDER = "{sink}"  # in a --service-env value: the sink's smtp://127.0.0.1:PORT


# --- The sink: counts, in a process of its own ------------------------------------------------


def _sink_main(port: int, counter: Any, ready: Any, latency_ms: float) -> None:
    """Runs the counting sink until terminated. `counter` (a shared integer) grows by the
    recipients of each message accepted. The sink offers PIPELINING (RFC 2920), as Postfix,
    Exim, SES and the other production relays do.

    With latency_ms > 0 each reply to MAIL, RCPT and end of DATA leaves latency_ms after its
    command arrived, as from a relay that far away: the replies form a delay line, in order,
    and the sink reads the next command meanwhile. A client that waits for each reply (smtplib)
    pays the latency three times a message; one that pipelines MAIL, RCPT and DATA pays it
    twice. Other replies (EHLO, the 354 to DATA) go at once, behind any still delayed."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP

    delay = latency_ms / 1000

    class Counting:
        async def handle_EHLO(
            self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
        ) -> list[str]:
            session.host_name = hostname
            return [*responses[:-1], "250-PIPELINING", responses[-1]]

        async def handle_MAIL(
            self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
        ) -> str:
            server.delay_next_reply()
            envelope.mail_from = address
            envelope.mail_options.extend(options)
            return "250 OK"

        async def handle_RCPT(
            self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
        ) -> str:
            server.delay_next_reply()
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(options)
            return "250 OK"

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            server.delay_next_reply(count=len(envelope.rcpt_tos))
            return "250 OK"

    class DelayLine(SMTP):  # type: ignore[misc]
        """An aiosmtpd session whose marked replies leave `delay` after their command."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._due = 0.0  # when the latest scheduled reply leaves
            self._next_delayed = False
            self._count_when_sent = 0

        def delay_next_reply(self, count: int = 0) -> None:
            self._next_delayed = delay > 0
            self._count_when_sent = count

        async def push(self, status: Any) -> None:
            data = (status.encode() if isinstance(status, str) else status) + b"\r\n"
            loop = asyncio.get_running_loop()
            now = loop.time()
            due = max(now + delay if self._next_delayed else now, self._due)
            count, self._count_when_sent, self._next_delayed = self._count_when_sent, 0, False
            if due <= now:
                self._send(data, count)
                return
            self._due = due + 1e-6  # strictly later: the heap keeps equal times in no order
            loop.call_at(self._due, self._send, data, count)

        def _send(self, data: bytes, count: int) -> None:
            if count:  # a message counts once its sender can have the 250
                with counter.get_lock():
                    counter.value += count
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(data)

    class SinkController(Controller):  # type: ignore[misc]
        def factory(self) -> SMTP:
            return DelayLine(self.handler, **self.SMTP_kwargs)

    controller = SinkController(Counting(), hostname="127.0.0.1", port=port)
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

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """User + system CPU the sink process has used so far, all its threads."""
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    def reset(self) -> None:
        with self.counter.get_lock():
            self.counter.value = 0

    def wait_for(
        self,
        n: int,
        timeout: float,
        marks: list[float] | None = None,
        check: Callable[[], None] | None = None,
    ) -> float:
        """The time.monotonic() at which the sink has counted n; raises TimeoutError after
        `timeout` seconds. `marks` collects the times at which each further quarter of n was
        reached; `check`, called about every 0.1 s, raises to give up early (a sender died)."""
        deadline = time.monotonic() + timeout
        quarter = 1
        polls = 0
        while self.count < n:
            if marks is not None and quarter < 4 and self.count >= n * quarter / 4:
                marks.append(time.monotonic())
                quarter += 1
            if time.monotonic() > deadline:
                raise TimeoutError(f"the sink counted {self.count} of {n}")
            polls += 1
            if check is not None and polls % 20 == 0:
                check()
            time.sleep(0.005)
        return time.monotonic()


@contextlib.contextmanager
def sink(latency_ms: float = 0) -> Iterator[Sink]:
    context = multiprocessing.get_context("spawn")
    counter = context.Value("q", 0)
    ready = context.Event()
    port = free_port()
    process = context.Process(
        target=_sink_main, args=(port, counter, ready, latency_ms), daemon=True
    )
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


# --- Raw: bare SMTP connections ---------------------------------------------------------------


def prebuilt_messages(n: int) -> list[tuple[str, bytes]]:
    """N messages of exactly the kind the service sends for the benchmark's release (same
    template, body and size), built before the clock starts: (recipient, message bytes)."""
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


def raw_layout(k: int) -> list[list[int]]:
    """Which of the K connections (0..K-1) each sending process holds: one process per
    connection up to RAW_PROCESSES_MAX, beyond that the connections dealt out evenly over
    RAW_PROCESSES_MAX processes, as threads."""
    processes = min(k, RAW_PROCESSES_MAX)
    return [list(range(p, k, processes)) for p in range(processes)]


@dataclass
class RawRun:
    rate: float  # messages a second, from the go until the sink counted N
    size: int  # bytes of one message
    cpu_ms: float  # CPU time of all sending processes, per message
    sink_cpu_ms: float  # the sink's CPU time per message in this round


def _raw_sender(
    messages: list[tuple[str, bytes]],
    connections: list[int],
    k: int,
    port: int,
    go: Any,
    reports: Any,
) -> None:
    """One sending process (forked: `messages` is the parent's list). Each of `connections`
    is a thread with its own SMTP connection sending messages j, j+k, j+2k, ... once `go` is
    set. Reports ("ready", pid) when its threads wait, then ("done", CPU seconds of this
    process, [errors])."""
    start = threading.Event()
    errors: list[str] = []

    def send(j: int) -> None:
        start.wait()
        try:
            with smtplib.SMTP("127.0.0.1", port) as connection:
                for index in range(j, len(messages), k):
                    to, data = messages[index]
                    connection.sendmail("noreply@press.example", [to], data)
        except Exception as error:
            errors.append(f"connection {j}: {error!r}")

    threads = [threading.Thread(target=send, args=(j,)) for j in connections]
    for thread in threads:
        thread.start()
    reports.put(("ready", os.getpid()))
    go.wait()
    start.set()
    for thread in threads:
        thread.join()
    usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads; zero at the fork
    reports.put(("done", usage.ru_utime + usage.ru_stime, errors))


def raw_round(the_sink: Sink, n: int, k: int, latency_ms: float) -> RawRun:
    """N prebuilt messages over K bare connections at once (see raw_layout); raises when a
    sender fails or the sink has not counted N in time."""
    messages = prebuilt_messages(n)
    context = multiprocessing.get_context("fork")  # the senders share `messages`
    go = context.Event()
    reports = context.Queue()
    layout = raw_layout(k)
    senders = [
        context.Process(
            target=_raw_sender,
            args=(messages, connections, k, the_sink.port, go, reports),
            daemon=True,
        )
        for connections in layout
    ]
    sys.stdout.flush()
    for sender in senders:
        sender.start()
    done: list[tuple[float, list[str]]] = []
    try:
        for _ in senders:
            kind, *_rest = reports.get(timeout=60)
            assert kind == "ready", kind

        def check() -> None:
            with contextlib.suppress(queue.Empty):
                while True:
                    _kind, cpu, errors = reports.get_nowait()
                    done.append((cpu, errors))
            failed = [error for _cpu, errors in done for error in errors]
            if failed:
                raise RuntimeError("raw sending failed: " + "; ".join(failed[:3]))
            dead = [s.exitcode for s in senders if s.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"a raw sending process died (exit codes {dead})")

        # a message takes three waits (MAIL, RCPT, DATA) on its connection
        floor = n / k * 3 * latency_ms / 1000
        the_sink.reset()
        sink_cpu = the_sink.cpu_seconds()
        started = time.monotonic()
        go.set()
        finished = the_sink.wait_for(n, timeout=max(600, 5 * floor), check=check)
        sink_cpu = the_sink.cpu_seconds() - sink_cpu
        while len(done) < len(senders):
            _kind, cpu, errors = reports.get(timeout=60)
            done.append((cpu, errors))
        for sender in senders:
            sender.join(30)
    finally:
        for sender in senders:
            if sender.is_alive():
                sender.kill()
                sender.join(5)
    return RawRun(
        rate=n / (finished - started),
        size=len(messages[0][1]),
        cpu_ms=sum(cpu for cpu, _errors in done) / n * 1000,
        sink_cpu_ms=sink_cpu / n * 1000,
    )


# --- The service ------------------------------------------------------------------------------


@dataclass
class ServiceRun:
    rate: float
    peak_rss_mib: float
    rest_rss_mib: float
    rest_pss_mib: float | None  # None where PSS cannot be read (not Linux)
    cpu_ms: float  # CPU time of all service processes, per message
    sink_cpu_ms: float
    redis_cpu_ms: float | None  # the embedded Redis's, per message; None with REDIS_URL
    planning_s: float
    total_s: float
    quarter_rates: list[float]


class ProcessTrees:
    """Some processes and all their descendants, as they are at each call."""

    def __init__(self, roots: list[subprocess.Popen[bytes]]) -> None:
        self.roots = [psutil.Process(p.pid) for p in roots]

    def members(self) -> list[psutil.Process]:
        found: list[psutil.Process] = []
        for root in self.roots:
            with contextlib.suppress(psutil.Error):
                found += [root, *root.children(recursive=True)]
        return found

    def rss(self) -> int:
        """Summed resident set size in bytes (shared pages counted once per process)."""
        total = 0
        for process in self.members():
            with contextlib.suppress(psutil.Error):
                total += process.memory_info().rss
        return total

    def pss(self) -> int | None:
        """Summed proportional set size in bytes, or None where the system has no PSS."""
        total = 0
        for process in self.members():
            try:
                info = process.memory_full_info()
            except psutil.NoSuchProcess:
                continue
            except (psutil.AccessDenied, NotImplementedError):
                return None
            if not hasattr(info, "pss"):
                return None
            total += info.pss
        return total

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of every member so far, plus those of their children
        that have ended and been waited for (no longer members, so counted once)."""
        total = 0.0
        for process in self.members():
            with contextlib.suppress(psutil.Error):
                t = process.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
        return total


class MemoryWatch:
    """Peak of the summed resident memory of some process trees, sampled every 50 ms."""

    def __init__(self, trees: ProcessTrees) -> None:
        self.trees = trees
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.trees.rss())

    def __enter__(self) -> MemoryWatch:
        self.peak = self.trees.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.trees.rss())


def _embedded_redis() -> psutil.Process | None:
    """The redis-server this process started (service.embedded_redis), if any."""
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if child.name().startswith("redis-server"):
                return child
    return None


def _cpu(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    with contextlib.suppress(psutil.Error):
        t = process.cpu_times()
        return float(t.user + t.system)
    return 0.0


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
    the_sink: Sink,
    n: int,
    database_url: str | None,
    worker_options: list[str],
    service_env: dict[str, str],
) -> ServiceRun:
    """One service round; `service_env` is laid over the environment the bench builds, with
    SINK_PLACEHOLDER in its values replaced by the sink's URL."""
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
            "SMTP_URL": the_sink.url,
            "BASE_URL": "https://press.example",
            "MAIL_FROM": MAIL_FROM,
            "CELERY_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
        }
        env |= {
            name: value.replace(SINK_PLACEHOLDER, the_sink.url)
            for name, value in service_env.items()
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

        def check() -> None:
            for name, process in zip(commands, processes, strict=True):
                if process.poll() is not None:
                    log = (workdir / f"{name}.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{log}")

        try:
            base = f"http://127.0.0.1:{web_port}"
            _wait_http(base + "/")
            time.sleep(3)  # the worker's pool is up
            check()
            trees = ProcessTrees(processes)
            rest = trees.rss()
            rest_pss = trees.pss()
            redis_process = _embedded_redis()
            the_sink.reset()
            with MemoryWatch(trees) as watch:
                cpu = trees.cpu_seconds()
                sink_cpu = the_sink.cpu_seconds()
                redis_cpu = _cpu(redis_process)
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
                finished = the_sink.wait_for(n, timeout=max(600, n / 20), marks=marks, check=check)
                cpu = trees.cpu_seconds() - cpu
                sink_cpu = the_sink.cpu_seconds() - sink_cpu
                redis_cpu = _cpu(redis_process) - redis_cpu
                marks.append(finished)
            planning = _planning_seconds(db_url, int(release["id"]))
            return ServiceRun(
                rate=n / (finished - started),
                peak_rss_mib=watch.peak / 2**20,
                rest_rss_mib=rest / 2**20,
                rest_pss_mib=None if rest_pss is None else rest_pss / 2**20,
                cpu_ms=cpu / n * 1000,
                sink_cpu_ms=sink_cpu / n * 1000,
                redis_cpu_ms=None if redis_process is None else redis_cpu / n * 1000,
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


def _env_assignment(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    return name, value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a number of milliseconds >= 0, not {text!r}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, not {text!r}")
    return value


def _mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} MiB"


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if len(known) == len(values) and known else None


def _field(value: float | None, digits: int) -> str:
    return "na" if value is None else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fanout",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--subscribers", "-n", type=_positive, default=20_000)
    parser.add_argument("--database", help="a PostgreSQL URL (default: SQLite in a temp dir)")
    parser.add_argument(
        "--runs",
        type=_positive,
        default=1,
        help="rounds of raw then service, interleaved; report each and the medians (default 1)",
    )
    parser.add_argument(
        "--relay-latency-ms",
        type=_non_negative,
        default=0,
        metavar="MS",
        help="the sink waits MS ms before each reply to MAIL, RCPT and DATA (default 0)",
    )
    parser.add_argument(
        "--raw-connections",
        type=_positive,
        default=4,
        metavar="K",
        help=f"bare SMTP connections the raw round sends over at once (default 4): a process "
        f"each up to {RAW_PROCESSES_MAX}, threads in {RAW_PROCESSES_MAX} processes beyond",
    )
    parser.add_argument(
        "--worker-option",
        action="append",
        default=[],
        help="passed to `celery worker`, e.g. --worker-option=--concurrency=2 (default: none)",
    )
    parser.add_argument(
        "--service-env",
        action="append",
        type=_env_assignment,
        default=[],
        metavar="NAME=VALUE",
        help="set in the environment of web, worker and beat, over the bench's own (repeatable);"
        f" {SINK_PLACEHOLDER} in VALUE stands for the sink's smtp://127.0.0.1:PORT, e.g. "
        f"--service-env 'SMTP_URL={SINK_PLACEHOLDER}?max_connections=64'",
    )
    args = parser.parse_args(argv)
    n = args.subscribers
    k = args.raw_connections
    latency = args.relay_latency_ms
    service_env = dict(args.service_env)
    kind = "PostgreSQL" if args.database else "SQLite"
    processes = len(raw_layout(k))
    print(
        f"Fan-out to {n:,} subscribers on {kind}, {os.cpu_count()} CPUs, relay latency "
        f"{latency:g} ms per MAIL/RCPT/DATA, raw: {k} connection{'s' if k > 1 else ''} "
        f"in {processes} process{'es' if processes > 1 else ''}"
        + (f", worker options {' '.join(args.worker_option)}" if args.worker_option else "")
        + (
            ", service env " + " ".join(f"{a}={b}" for a, b in service_env.items())
            if service_env
            else ""
        ),
        flush=True,
    )
    results: list[tuple[RawRun, ServiceRun]] = []
    with sink(latency) as the_sink:
        for run in range(1, args.runs + 1):
            raw = raw_round(the_sink, n, k, latency)
            service = run_service(the_sink, n, args.database, args.worker_option, service_env)
            results.append((raw, service))
            redis = (
                ""
                if service.redis_cpu_ms is None
                else f", embedded Redis {service.redis_cpu_ms:.2f} ms"
            )
            print(
                f"  run {run}: service {service.rate:,.0f} msg/s, raw {raw.rate:,.0f} msg/s "
                f"({raw.size:,} B each), ratio service/raw {service.rate / raw.rate:.2f}\n"
                f"    service memory: at rest RSS {_mib(service.rest_rss_mib)}, "
                f"PSS {_mib(service.rest_pss_mib)}; peak RSS {_mib(service.peak_rss_mib)}\n"
                f"    CPU per message: service {service.cpu_ms:.2f} ms; not the service's: "
                f"raw senders {raw.cpu_ms:.2f} ms, sink {raw.sink_cpu_ms:.2f} ms (raw round) "
                f"and {service.sink_cpu_ms:.2f} ms (service round){redis}\n"
                f"    planning {service.planning_s:.1f} s of {service.total_s:.1f} s, "
                "service msg/s by quarter "
                + " / ".join(f"{rate:,.0f}" for rate in service.quarter_rates),
                flush=True,
            )

    def median(pick: Callable[[RawRun, ServiceRun], float | None]) -> float | None:
        return _median([pick(raw, service) for raw, service in results])

    def med(pick: Callable[[RawRun, ServiceRun], float]) -> float:
        return statistics.median(pick(raw, service) for raw, service in results)

    service_rate, raw_rate = med(lambda r, s: s.rate), med(lambda r, s: r.rate)
    ratio = med(lambda r, s: s.rate / r.rate)
    rest_rss, peak_rss = med(lambda r, s: s.rest_rss_mib), med(lambda r, s: s.peak_rss_mib)
    rest_pss = median(lambda r, s: s.rest_pss_mib)
    cpu = med(lambda r, s: s.cpu_ms)
    raw_cpu = med(lambda r, s: r.cpu_ms)
    sink_raw, sink_service = med(lambda r, s: r.sink_cpu_ms), med(lambda r, s: s.sink_cpu_ms)
    redis_cpu = median(lambda r, s: s.redis_cpu_ms)
    planning, total = med(lambda r, s: s.planning_s), med(lambda r, s: s.total_s)
    print(
        f"Median of {len(results)} run{'s' if len(results) > 1 else ''}: "
        f"service {service_rate:,.0f} msg/s, raw {raw_rate:,.0f} msg/s, "
        f"ratio service/raw {ratio:.2f} (median of the runs' ratios); "
        f"service memory at rest RSS {_mib(rest_rss)}, PSS {_mib(rest_pss)}, "
        f"peak RSS {_mib(peak_rss)}; service CPU {cpu:.2f} ms per message"
    )
    print(
        f"N={n} db={kind} latency_ms={latency:g} raw_connections={k} raw_processes={processes} "
        f"runs={len(results)} baseline={raw_rate:.0f} service={service_rate:.0f} "
        f"ratio={ratio:.2f} peak_rss_mib={peak_rss:.0f} rest_rss_mib={rest_rss:.0f} "
        f"rest_pss_mib={_field(rest_pss, 0)} cpu_ms_per_msg={cpu:.3f} "
        f"raw_cpu_ms_per_msg={raw_cpu:.3f} sink_cpu_ms_per_msg_raw={sink_raw:.3f} "
        f"sink_cpu_ms_per_msg_service={sink_service:.3f} "
        f"redis_cpu_ms_per_msg={_field(redis_cpu, 3)} "
        f"planning_s={planning:.1f} total_s={total:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
