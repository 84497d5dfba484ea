"""The Outbox of a task in this worker, built from its Flask app: the one place where the
sending code (service.sending) meets the app, Celery and this process's relay pool."""

from __future__ import annotations

import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from celery import current_app as current_celery
from celery.signals import worker_process_shutdown, worker_shutdown
from flask import current_app

from service.app_state import session_scope
from service.config import Settings
from service.db import utcnow
from service.redis_clients import app_redis
from service.sending.messages import Composer, MessageCache
from service.sending.outbox import Outbox
from service.sending.relay_pool import RelayPool
from service.task_names import TaskName
from workers import shutdown

_messages = MessageCache()  # per thread inside: a cache being refilled is not shared
_lock = threading.Lock()
_senders: tuple[object, int, RelayPool, ThreadPoolExecutor] | None = None


def outbox() -> Outbox:
    extensions = current_app.extensions
    settings = extensions["pressroom.settings"]
    composer = Composer.from_extensions(extensions)
    pool, executor = senders(settings)
    return Outbox(
        open_session=session_scope,
        redis=app_redis(),
        transport=pool,
        executor=executor,
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


def senders(settings: Settings) -> tuple[RelayPool, ThreadPoolExecutor]:
    """This process's relay pool (SMTP_CONNECTIONS kept connections over SMTP_URL's relays)
    and the threads that send over it, made on first use after the fork and kept from one
    task to the next: a send to 100,000 readers is some hundreds of batches, and each new
    connection costs a TCP (and TLS) handshake, EHLO and AUTH. Notices and test copies take
    the same connections."""
    global _senders
    key = (settings.relays, settings.smtp_connections, settings.smtp_messages_per_connection)
    with _lock:
        if _senders is None or _senders[:2] != (key, os.getpid()):
            if _senders is not None and _senders[1] == os.getpid():
                _close(_senders)
            pool = RelayPool(
                settings.relays,
                connections=settings.smtp_connections,
                messages_per_connection=settings.smtp_messages_per_connection,
            )
            executor = ThreadPoolExecutor(settings.smtp_connections, thread_name_prefix="smtp")
            _senders = (key, os.getpid(), pool, executor)
        return _senders[2], _senders[3]


def _close(senders: tuple[object, int, RelayPool, ThreadPoolExecutor]) -> None:
    senders[3].shutdown(wait=True)
    senders[2].close()


@worker_process_shutdown.connect  # a prefork child ending
@worker_shutdown.connect  # the worker ending (its threads pool ran the tasks here)
def _close_senders(**_: object) -> None:
    global _senders
    with _lock:
        if _senders is not None and _senders[1] == os.getpid():
            _close(_senders)
        _senders = None
