"""The only door from the web to Celery: tasks are sent by name, never imported.

The database holds the truth and Redis is only the doorbell (DESIGN.md): a door that has
committed work rings with `ring`, which never turns a stored change into an error answer. What
a failed ring leaves undone is carried out by the sweep (`service.sending.sweep`) from what the
database says. `enqueue` raises, for the doors that have stored nothing yet.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import Celery
from flask import Flask, current_app
from kombu.exceptions import OperationalError

from service.task_names import TaskName

log = logging.getLogger(__name__)

# The broker (or Redis behind it) being unreachable, or up but refusing writes (READONLY on a
# replica after a failover, OOM under maxmemory noeviction, MISCONF when it cannot persist,
# NOREPLICAS): an outage to wait out, not a bug. Redis answers these as error replies
# (ResponseError), so every error reply counts; the log names the class.
BROKER_OUTAGES: tuple[type[Exception], ...] = (
    OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ResponseError,
)


def init_app(app: Flask, broker_url: str, queue: str) -> None:
    client = Celery("pressroom-dispatch", broker=broker_url, set_as_current=False)
    client.conf.update(
        task_default_queue=queue,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"max_retries": 3, "interval_start": 0.1},
        task_serializer="json",
    )
    app.extensions["pressroom.dispatch"] = client


def enqueue(task: TaskName, *args: Any) -> None:
    """Call only after the transaction that made the work has committed.

    Raises one of BROKER_OUTAGES when the broker cannot be reached.
    """
    client: Celery = current_app.extensions["pressroom.dispatch"]
    client.send_task(task.value, args=list(args))


def ring(task: TaskName, *args: Any) -> bool:
    """Enqueue committed work whose record in the database lets the sweep carry it out anyway.

    Returns False (and logs a warning) when the broker cannot be reached; never raises for that.
    """
    try:
        enqueue(task, *args)
    except BROKER_OUTAGES as error:
        log.warning(
            "broker unreachable (%s): %s for %s is left to the sweep",
            error.__class__.__name__,
            task.value,
            args,
        )
        return False
    return True
