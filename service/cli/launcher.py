"""`pressroom run`: the whole service on one machine, for trying it out (what `make run` starts).

Starts an embedded Redis (unless REDIS_URL is set; it is Celery's broker too unless
CELERY_BROKER_URL names one), a local SMTP sink with its inbox at
/dev/mailbox (unless SMTP_URL is set), migrates the database and seeds a demo publisher and
releases, then runs the web server, a Celery worker and beat as child processes, and, once
all three answer (service/cli/readiness.py), prints where to go with the demo login. Ctrl-C
or SIGTERM stops all of it, with exit status 0.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from service.cli import readiness
from service.config import redis_url_from_env

INSTANCE = Path("instance")


def _secret_key() -> str:
    path = INSTANCE / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


DEMO_LOGIN = INSTANCE / "demo-login.json"
LOCAL_BOUNCE_ADDRESS = "bounces@localhost"  # the local bounce server's, under `make run`


def _flask(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "flask", "--app", "service", *args], env=env, check=True)


def _prepare_database(env: dict[str, str], *, demo: bool) -> dict[str, str] | None:
    """Migrate; in the launcher's own database, seed the demo publisher and releases (once)
    and return the demo login. A database named by DATABASE_URL is never seeded."""
    _flask(env, "db", "upgrade")
    if not demo:
        return None
    _flask(env, "demo", "seed", "--login-file", str(DEMO_LOGIN.resolve()))
    return dict(json.loads(DEMO_LOGIN.read_text()))


class _StopRequest:
    """Set by SIGINT (Ctrl-C) and SIGTERM: the launcher then stops its parts in order and exits
    0. A flag, not an exception: a KeyboardInterrupt could land anywhere, even in the clean-up,
    and Python's own SIGINT exit status (130) makes `make run` report "Error"."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: object) -> None:
        self.requested = True

    def install(self) -> None:
        signal.signal(signal.SIGINT, self)
        signal.signal(signal.SIGTERM, self)


def run(host: str, port: int, worker_concurrency: int | None) -> int:
    from service.dev_reports import ReportSender
    from service.embedded_redis import EmbeddedRedis, free_port
    from service.mailsink import MailSink, SinkHandler

    stop = _StopRequest()
    stop.install()
    started_at = time.time()
    INSTANCE.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.setdefault("SECRET_KEY", _secret_key())
    own_database = not env.get("DATABASE_URL")
    env.setdefault("DATABASE_URL", f"sqlite:///{(INSTANCE / 'pressroom.db').resolve()}")
    env.setdefault("BASE_URL", f"http://{host}:{port}")
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("LOG_FORMAT", "console")  # lines for a person; production's default is JSON

    redis_server = sink = None
    children: list[subprocess.Popen[bytes]] = []
    try:
        if not env.get("REDIS_URL") and not env.get("REDIS_SENTINELS"):
            redis_server = EmbeddedRedis().start()
            env["REDIS_URL"] = redis_server.url
        bounce_port = None
        if not env.get("SMTP_URL"):
            maildir = (INSTANCE / "mailbox").resolve()
            # The sink bounces mail to bounce.example and complains for complaint.example,
            # to the bounce server started below (dev_reports).
            bounce_port = free_port()
            env.setdefault("BOUNCE_ADDRESS", LOCAL_BOUNCE_ADDRESS)
            reports = ReportSender("127.0.0.1", bounce_port)
            sink = MailSink(SinkHandler(maildir, on_message=reports)).start()
            env["SMTP_URL"] = sink.url
            env["PRESSROOM_DEV_MAILBOX"] = str(maildir)
        try:
            login = _prepare_database(env, demo=own_database)
        except subprocess.CalledProcessError:
            if stop.requested:  # Ctrl-C reached `flask db upgrade` as well
                return 0
            raise
        if stop.requested:
            return 0
        bin_dir = Path(sys.executable).parent
        # A node name of its own, so that the ping below reaches this worker and no other
        # instance's on a shared broker.
        worker_name = f"pressroom-{os.getpid()}@{socket.gethostname()}"
        schedule = (INSTANCE / "celerybeat-schedule").resolve()
        children.append(
            subprocess.Popen(
                [
                    str(bin_dir / "celery"),
                    "-A",
                    "workers",
                    "worker",
                    "--loglevel=INFO",
                    *([f"--concurrency={worker_concurrency}"] if worker_concurrency else []),
                    f"--hostname={worker_name}",
                ],
                env=env,
                process_group=0,  # Ctrl-C is the launcher's: it stops them in order
            )
        )
        children.append(
            subprocess.Popen(
                [
                    str(bin_dir / "celery"),
                    "-A",
                    "workers",
                    "beat",
                    "--loglevel=INFO",
                    f"--schedule={schedule}",
                ],
                env=env,
                process_group=0,  # Ctrl-C is the launcher's: it stops them in order
            )
        )
        if bounce_port is not None:
            children.append(
                subprocess.Popen(
                    [
                        sys.executable, "-m", "flask", "--app", "service",
                        "bounces", "serve", "--port", str(bounce_port),
                    ],
                    env=env,
                    process_group=0,
                )
            )  # fmt: skip
        children.append(
            subprocess.Popen(
                [
                    str(bin_dir / "gunicorn"),
                    "service:create_app()",
                    f"--bind={host}:{port}",
                    # One process of threads: pages wait on the database, not the CPU, and
                    # a process costs tens of MiB on a small machine.
                    "--workers=1",
                    "--graceful-timeout=10",
                    "--threads=8",
                    "--access-logfile=-",
                    "--logger-class=service.gunicorn_logger.RedactingGunicornLogger",
                    "--no-control-socket",  # one per user at ~/.gunicorn: instances collide
                ],
                env=env,
                process_group=0,  # Ctrl-C is the launcher's: it stops them in order
            )
        )
        parts = _Parts(
            web_url=f"http://{_reachable(host)}:{port}/",
            worker=readiness.WorkerPing(
                env.get("CELERY_BROKER_URL") or redis_url_from_env(env), worker_name
            ),
            schedule=schedule,
            since=started_at,
        )
        try:
            code = _wait_until_ready(children, parts, stop)
        finally:
            parts.worker.close()
        if code is not None:
            return code
        _banner(
            env,
            host,
            port,
            login,
            local_sink=sink is not None,
            local_redis=redis_server is not None,
        )
        return _wait(children, stop)
    finally:
        _stop(children)
        if sink is not None:
            sink.stop()
        if redis_server is not None:
            redis_server.stop()


@dataclass
class _Parts:
    web_url: str
    worker: readiness.WorkerPing
    schedule: Path
    since: float

    def not_answering(self) -> list[str]:
        """The parts that do not answer yet, by name; empty when all do."""
        missing = []
        if not readiness.web_answers(self.web_url):
            missing.append("web")
        if not readiness.beat_answers(self.schedule, self.since):
            missing.append("beat")
        if not self.worker.answers():
            missing.append("worker")
        return missing


READY_PATIENCE = 90.0  # seconds before saying which part keeps the banner waiting


def _wait_until_ready(
    children: list[subprocess.Popen[bytes]], parts: _Parts, stop: _StopRequest
) -> int | None:
    """Until web, worker and beat all answer: None then; the exit status to end with when a
    part stopped first (0 after Ctrl-C)."""
    deadline = time.monotonic() + READY_PATIENCE
    while True:
        if stop.requested:
            return 0
        code = _stopped_child(children, stop)
        if code is not None:
            return code
        missing = parts.not_answering()
        if not missing:
            return None
        if time.monotonic() > deadline:
            print(
                f"pressroom: still waiting for {', '.join(missing)} to answer",
                file=sys.stderr,
                flush=True,
            )
            deadline = time.monotonic() + READY_PATIENCE
        time.sleep(0.3)


def _reachable(host: str) -> str:
    """Where this machine reaches a server bound to `host` (a wildcard binds loopback too)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _banner(
    env: dict[str, str],
    host: str,
    port: int,
    login: dict[str, str] | None,
    *,
    local_sink: bool,
    local_redis: bool,
) -> None:
    lines = [
        "",
        "Pressroom is running. Ctrl-C stops everything.",
        f"  Press room:  http://{host}:{port}/",
    ]
    if login is not None:
        lines += [
            f"  Desk:        http://{host}:{port}/admin   "
            f"(demo login {login['email']} / {login['password']})",
            f"  API token:   {login['token']}   (Authorization: Bearer ...)",
        ]
    else:
        lines.append(
            f"  Desk:        http://{host}:{port}/admin   "
            "(a login: flask --app service publisher create EMAIL)"
        )
    if local_sink:
        lines.append(
            f"  Mailbox:     http://{host}:{port}/dev/mailbox   (every email sent lands here)"
        )
        lines.append(
            "  Bounces:     mail to @bounce.example bounces, to @complaint.example is reported "
            "as spam"
        )
    lines.append(f"  Database:    {env['DATABASE_URL']}")
    lines.append("  Redis:       " + ("embedded (REDIS_URL unset)" if local_redis else "REDIS_URL"))
    lines.append("")
    print("\n".join(lines), flush=True)


def _wait(children: list[subprocess.Popen[bytes]], stop: _StopRequest) -> int:
    """Until Ctrl-C or SIGTERM (0), or until a part stops by itself (its exit status, 1 for 0:
    nothing should stop while the others run)."""
    while not stop.requested:
        code = _stopped_child(children, stop)
        if code is not None:
            return code
        time.sleep(0.3)
    return 0


def _stopped_child(children: list[subprocess.Popen[bytes]], stop: _StopRequest) -> int | None:
    """The exit status to end with when a part has stopped; None while all run. Ctrl-C in a
    terminal reaches the parts too, and one may stop a moment before the launcher's own
    handler runs: a stop within a second of Ctrl-C is that, and ends with 0."""
    for child in children:
        code = child.poll()
        if code is None:
            continue
        settle = time.monotonic() + 1.0
        while not stop.requested and time.monotonic() < settle:
            time.sleep(0.05)
        if stop.requested:
            return 0
        print(f"pressroom: {child.args[0]} stopped with exit code {code}", file=sys.stderr)
        return code or 1
    return None


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pressroom", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="run everything locally (what `make run` does)")
    run_parser.add_argument("--host", default="127.0.0.1")
    run_parser.add_argument("--port", type=int, default=8000)
    run_parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="tasks the Celery worker runs at once, in threads (default: WORKER_CONCURRENCY, 8)",
    )
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.host, args.port, args.concurrency)
    return 2


if __name__ == "__main__":
    sys.exit(main())
