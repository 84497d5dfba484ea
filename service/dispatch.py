"""The only door from the web to Celery: tasks are sent by name, never imported.

The database holds the truth and Redis is only the doorbell (DESIGN.md): a door that has
committed work rings with `ring`, which never turns a stored change into an error answer. What
a failed ring leaves undone is carried out by the sweep (`service.sending.sweep`) from what the
database says. `enqueue` raises, for the doors that have stored nothing yet.

Celery itself is imported on the first enqueue, not with this module: building the app (and
importing anything under service/) loads no Celery.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import redis
from amqp.exceptions import MessageNacked
from flask import Flask, current_app
from kombu.exceptions import OperationalError

from service import broker
from service.task_names import TaskName

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)

# The broker (or Redis behind it) being unreachable, or up but refusing writes (READONLY on a
# replica after a failover, OOM under maxmemory noeviction, MISCONF when it cannot persist,
# NOREPLICAS): an outage to wait out, not a bug. Redis answers these as error replies
# (ResponseError), so every error reply counts; the log names the class. RabbitMQ refusing a
# publish it was asked to confirm (a queue over its limit, a disk alarm) is a MessageNacked.
BROKER_OUTAGES: tuple[type[Exception], ...] = (
    OperationalError,
    MessageNacked,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ResponseError,
)


class Dispatcher:
    """A Celery client that sends tasks by name to `queue` on `broker_url` (Redis or RabbitMQ,
    service/broker.py), made on first use."""

    def __init__(self, broker_url: str, queue: str) -> None:
        self.broker_url = broker_url
        self.queue = queue
        self._client: Celery | None = None
        self._lock = threading.Lock()

    def client(self) -> Celery:
        with self._lock:
            if self._client is None:
                from celery import Celery

                shared = broker.celery_settings(self.broker_url, self.queue)
                client = Celery(
                    "pressroom-dispatch", broker=shared["broker_url"], set_as_current=False
                )
                client.conf.update(
                    shared,
                    broker_connection_retry_on_startup=True,
                    broker_transport_options={
                        **shared["broker_transport_options"],
                        "max_retries": 3,
                        "interval_start": 0.1,
                    },
                    task_serializer="json",
                )
                self._client = client
            return self._client

    def send(self, task: TaskName, args: list[Any]) -> None:
        self.client().send_task(task.value, args=args)

    def queue_depth(self) -> int:
        """Tasks waiting in the queue, as the broker counts them (a passive declare, which
        creates nothing: on RabbitMQ the ready messages, not those a worker holds unacked); 0
        when the queue does not exist yet. Raises one of BROKER_OUTAGES."""
        from kombu.exceptions import ChannelError

        with self.client().connection_for_read() as connection:
            try:
                declared = connection.default_channel.queue_declare(self.queue, passive=True)
            except (ChannelError, *connection.channel_errors):  # RabbitMQ's NOT_FOUND is amqp's
                return 0  # not declared yet: no worker has started, no task was sent
            return int(declared.message_count)


def init_app(app: Flask, broker_url: str, queue: str) -> None:
    app.extensions["pressroom.dispatch"] = Dispatcher(broker_url, queue)


def enqueue(task: TaskName, *args: Any) -> None:
    """Call only after the transaction that made the work has committed.

    Raises one of BROKER_OUTAGES when the broker cannot be reached.
    """
    dispatcher: Dispatcher = current_app.extensions["pressroom.dispatch"]
    dispatcher.send(task, list(args))


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
