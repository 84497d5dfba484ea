"""The Outbox of a task in this worker, built from its Flask app: the one place where the
sending code (service.sending) meets the app, Celery and this process's relay pool."""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass

from celery import current_app as current_celery
from celery.signals import worker_process_shutdown, worker_shutdown
from flask import current_app

from service.app_state import session_scope
from service.config import Settings
from service.db import utcnow
from service.redis_clients import app_redis
from service.sending.messages import Composer, MessageCache
from service.sending.outbox import Outbox
from service.sending.relay_pool import IN_FLIGHT_PER_CONNECTION, RelayPool
from service.sending.sender_threads import SenderThreads
from service.task_names import TaskName
from workers import shutdown

_messages = MessageCache()  # per thread inside: a cache being refilled is not shared
_lock = threading.Lock()


@dataclass
class _Senders:
    key: object  # the settings they were made from
    pid: int
    pool: RelayPool
    executor: SenderThreads


_senders: _Senders | None = None


def outbox() -> Outbox:
    extensions = current_app.extensions
    settings = extensions["pressroom.settings"]
    composer = Composer.from_extensions(extensions)
    made = senders(settings)
    return Outbox(
        open_session=session_scope,
        redis=app_redis(),
        transport=made.pool,
        executor=made.executor,
        window=made.executor.limit,  # N, or 2N once a relay proved far
        settings=settings,
        composer=composer,
        messages=functools.partial(_messages.get, composer, now=utcnow),
        ring=ring,
        stop_requested=shutdown.requested,
    )


def ring(task: TaskName, *args: int | str) -> bool:
    """Enqueue a task of this worker's own app (raises when the broker is unreachable: the
    task then fails, and its own retry or the sweep carries the work)."""
    current_celery.tasks[task.value].delay(*args)
    return True


def senders(settings: Settings) -> _Senders:
    """This process's relay pool (SMTP_CONNECTIONS kept connections over SMTP_URL's relays)
    and the threads that send over it, made on first use after the fork and kept from one
    task to the next: a send to 100,000 readers is some hundreds of batches, and each new
    connection costs a TCP (and TLS) handshake, EHLO and AUTH. Notices and test copies take
    the same connections. One thread per connection; twice as many once a relay proves far
    (RelayPool `on_far`): a message then waits for its reply while the next one goes out
    over its connection."""
    global _senders
    key = (settings.relays, settings.smtp_connections, settings.smtp_messages_per_connection)
    connections = settings.smtp_connections
    with _lock:
        if _senders is None or (_senders.key, _senders.pid) != (key, os.getpid()):
            if _senders is not None and _senders.pid == os.getpid():
                _close(_senders)
            executor = SenderThreads(connections, name="smtp")
            pool = RelayPool(
                settings.relays,
                connections=connections,
                messages_per_connection=settings.smtp_messages_per_connection,
                on_far=lambda: executor.grow(IN_FLIGHT_PER_CONNECTION * connections),
            )
            _senders = _Senders(key, os.getpid(), pool, executor)
        return _senders


def _close(senders: _Senders) -> None:
    senders.executor.shutdown(wait=True)
    senders.pool.close()


@worker_process_shutdown.connect  # a prefork child ending
@worker_shutdown.connect  # the worker ending (its threads pool ran the tasks here)
def _close_senders(**_: object) -> None:
    global _senders
    with _lock:
        if _senders is not None and _senders.pid == os.getpid():
            _close(_senders)
        _senders = None
