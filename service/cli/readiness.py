"""Whether each part `pressroom run` started answers: the web server an HTTP request, the Celery
worker a ping over the broker, beat by having written its schedule since it started."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from celery import Celery

from service import broker

PING_ONLY = "pressroom-ping"  # Celery's remote control needs no task queue; named for clarity


def web_answers(url: str, timeout: float = 2.0) -> bool:
    """True once `url` gives any HTTP answer below 500 (a page, a redirect, a 404)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status) < 500
    except urllib.error.HTTPError as error:
        return error.code < 500
    except (OSError, ValueError):
        return False


class WorkerPing:
    """Pings one Celery worker, by its node name, over the broker (Celery's remote control:
    the worker must be consuming to answer)."""

    def __init__(self, broker_url: str, node_name: str) -> None:
        self._celery = Celery("pressroom-launcher", set_as_current=False)
        self._celery.conf.update(
            broker.celery_settings(broker_url, queue=PING_ONLY),
            broker_connection_retry_on_startup=False,
        )
        self.node_name = node_name

    def answers(self, timeout: float = 1.0) -> bool:
        try:
            replies = self._celery.control.ping(destination=[self.node_name], timeout=timeout)
        except Exception:  # the broker not up yet, or gone: not answering (yet)
            return False
        return any(self.node_name in reply for reply in replies or ())

    def close(self) -> None:
        self._celery.close()


def beat_answers(schedule: Path, since: float) -> bool:
    """True once beat has written its schedule file (shelve: `schedule`, or `schedule.db`,
    `.dat` ... by the dbm module at hand) at or after `since` (time.time()), which it does
    once it has read its entries and is about to tick."""
    for path in schedule.parent.glob(f"{schedule.name}*"):
        try:
            if path.stat().st_mtime >= since:
                return True
        except OSError:
            continue
    return False
