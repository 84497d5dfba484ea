"""A warm shutdown that reaches the work in hand, whichever processes received SIGTERM.

Celery's warm shutdown (SIGTERM to the main process) waits for the tasks in hand, and a batch
at a slow relay can take minutes; SIGTERM to every process of the worker (systemd's default
`KillMode=control-group`, `docker stop` with a shell as PID 1, `kill -TERM -PGID`) used to kill
the pool's children mid-batch instead (WorkerLostError, duplicates, rows left in a lease).

So a stop is a request that long tasks look at between steps (`requested()`): a batch gives its
unsent rows back at once and ends after the message in hand. In a pool child, SIGTERM while a
task runs only makes that request, and the child ends by itself once the task has returned; an
idle child ends at once, quietly. The main process, on its own warm shutdown, passes the request
on to its children with SIGUSR2, so that `kill -TERM <main pid>` alone stops them as soon; the
pool then ends them as usual.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import billiard.common
from billiard.process import active_children, current_process
from celery.signals import worker_process_init, worker_shutting_down

STOP_SIGNAL = signal.SIGUSR2  # main process -> pool children: stop the task in hand
# Time for a finished task's result to reach the main process before a child that got SIGTERM
# mid-task ends itself (a cold shutdown sends its children SIGTERM once, then waits for them).
EXIT_AFTER_TASK_SECONDS = 1.0

_requested = threading.Event()
_busy = 0
_busy_lock = threading.Lock()
_in_pool_child = False
_terminated = False  # this pool child got SIGTERM: it ends once its task has returned


def requested() -> bool:
    """Whether this process was asked to stop: end the work in hand at the next safe point."""
    return _requested.is_set()


def request() -> None:
    _requested.set()


@contextlib.contextmanager
def task_in_hand() -> Iterator[None]:
    """Around each task: SIGTERM meanwhile asks the task to stop instead of killing it."""
    global _busy
    if _in_pool_child and signal.getsignal(signal.SIGTERM) is not _on_sigterm:
        # Billiard sets its own handler after worker_process_init: ours goes in here, in the
        # child's main thread, before the first task runs.
        signal.signal(signal.SIGTERM, _on_sigterm)
    with _busy_lock:
        _busy += 1
    try:
        yield
    finally:
        with _busy_lock:
            _busy -= 1
            idle = _busy == 0
        if idle and _terminated:
            _end_soon()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _terminated
    request()
    _terminated = True
    with _busy_lock:
        busy = _busy > 0
    if not busy:
        _leave()


def _leave() -> None:
    """End an idle pool child as billiard's own SIGTERM handler does: with its "terminate
    handler fired" mark set, so that a job it had just taken (before `task_in_hand`) counts as
    lost and is redelivered, never as finished; but with exit status 0, as a clean end."""
    fired = getattr(billiard.common, "_should_have_exited", None)
    if isinstance(fired, list) and fired:
        fired[0] = True
    sys.exit(0)


def _on_stop_request(signum: int, frame: FrameType | None) -> None:
    request()


def _end_soon() -> None:
    """End this child once its finished task's result has reached the main process."""
    timer = threading.Timer(EXIT_AFTER_TASK_SECONDS, os.kill, (os.getpid(), signal.SIGTERM))
    timer.daemon = True
    timer.start()


@worker_process_init.connect
def _start_pool_child(**_: Any) -> None:
    """Also sent by the solo pool, in the main process: only a forked child takes signals."""
    global _in_pool_child, _terminated
    if current_process()._parent_pid is None:  # the main process: Celery's handlers stay
        return
    _in_pool_child, _terminated = True, False
    _requested.clear()  # a child forked during a shutdown starts afresh
    signal.signal(STOP_SIGNAL, _on_stop_request)


@worker_shutting_down.connect
def _pass_on_to_children(how: str = "", **_: Any) -> None:
    """In the main process: a warm shutdown stops the tasks in hand between steps (solo and
    thread pools run them here; prefork children are told with STOP_SIGNAL)."""
    request()
    if how != "Warm":
        return  # a cold shutdown terminates the children itself
    for child in active_children():
        if not str(getattr(child, "name", "")).startswith("ForkPoolWorker"):
            continue  # e.g. the beat of `celery worker -B`, which SIGUSR2 would kill
        with contextlib.suppress(ProcessLookupError, AttributeError, TypeError):
            if child.pid:
                os.kill(child.pid, STOP_SIGNAL)
