"""`pressroom run`: the whole service on one machine, for trying it out (what `make run` starts).

Starts an embedded Redis (unless REDIS_URL is set), a local SMTP sink with its inbox at
/dev/mailbox (unless SMTP_URL is set), migrates the database and seeds a demo publisher and
releases, then runs the web server, a Celery worker and beat as child processes, and prints
where to go with the demo login. Ctrl-C stops all of it.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

INSTANCE = Path("instance")


def _secret_key() -> str:
    path = INSTANCE / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


DEMO_LOGIN = INSTANCE / "demo-login.json"


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


def run(host: str, port: int, worker_concurrency: int) -> int:
    from service.embedded_redis import EmbeddedRedis
    from service.mailsink import MailSink, SinkHandler

    INSTANCE.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.setdefault("SECRET_KEY", _secret_key())
    own_database = not env.get("DATABASE_URL")
    env.setdefault("DATABASE_URL", f"sqlite:///{(INSTANCE / 'pressroom.db').resolve()}")
    env.setdefault("BASE_URL", f"http://{host}:{port}")
    env["PYTHONUNBUFFERED"] = "1"

    redis_server = sink = None
    if not env.get("REDIS_URL"):
        redis_server = EmbeddedRedis().start()
        env["REDIS_URL"] = redis_server.url
    if not env.get("SMTP_URL"):
        maildir = (INSTANCE / "mailbox").resolve()
        sink = MailSink(SinkHandler(maildir)).start()
        env["SMTP_URL"] = sink.url
        env["PRESSROOM_DEV_MAILBOX"] = str(maildir)

    children: list[subprocess.Popen[bytes]] = []
    try:
        login = _prepare_database(env, demo=own_database)
        bin_dir = Path(sys.executable).parent
        children.append(
            subprocess.Popen(
                [
                    str(bin_dir / "celery"),
                    "-A",
                    "workers",
                    "worker",
                    "--loglevel=INFO",
                    f"--concurrency={worker_concurrency}",
                    "--hostname=pressroom@%h",
                ],
                env=env,
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
                    f"--schedule={(INSTANCE / 'celerybeat-schedule').resolve()}",
                ],
                env=env,
            )
        )
        children.append(
            subprocess.Popen(
                [
                    str(bin_dir / "gunicorn"),
                    "service:create_app()",
                    f"--bind={host}:{port}",
                    "--workers=2",
                    "--graceful-timeout=10",
                    "--threads=4",
                    "--access-logfile=-",
                    "--logger-class=service.logs.RedactingGunicornLogger",
                    "--no-control-socket",  # one per user at ~/.gunicorn: instances collide
                ],
                env=env,
            )
        )
        _banner(
            env,
            host,
            port,
            login,
            local_sink=sink is not None,
            local_redis=redis_server is not None,
        )
        return _wait(children)
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(children)
        if sink is not None:
            sink.stop()
        if redis_server is not None:
            redis_server.stop()


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
    lines.append(f"  Database:    {env['DATABASE_URL']}")
    lines.append("  Redis:       " + ("embedded (REDIS_URL unset)" if local_redis else "REDIS_URL"))
    lines.append("")
    print("\n".join(lines), flush=True)


def _wait(children: list[subprocess.Popen[bytes]]) -> int:
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    while True:
        for child in children:
            code = child.poll()
            if code is not None:
                print(f"pressroom: {child.args[0]} stopped with exit code {code}", file=sys.stderr)
                return code or 1
        time.sleep(0.5)


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
    run_parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args.host, args.port, args.concurrency)
    return 2


if __name__ == "__main__":
    sys.exit(main())
