"""SenderThreads: an Executor whose limit grows while work is under way, as the relay pool asks
once a relay proves far. Work runs once each, cancelled work never, shutdown lets queued
work finish."""

from __future__ import annotations

import threading
import time

import pytest
import structlog

from service import logs
from service.sending.sender_threads import SenderThreads


def most_at_once(executor: SenderThreads, tasks: int) -> int:
    lock, now, most = threading.Lock(), [0], [0]

    def task() -> None:
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        time.sleep(0.1)
        with lock:
            now[0] -= 1

    for future in [executor.submit(task) for _ in range(tasks)]:
        future.result()
    return most[0]


def test_threads_start_as_work_queues_up_and_grow_on_request() -> None:
    executor = SenderThreads(2)
    assert most_at_once(executor, 6) == 2
    executor.grow(4)
    executor.grow(3)  # never fewer
    assert executor.limit == 4
    assert most_at_once(executor, 8) == 4
    executor.shutdown()


def test_results_errors_cancels_and_shutdown() -> None:
    executor = SenderThreads(1)
    gate = threading.Event()
    first = executor.submit(gate.wait, 5)
    failing = executor.submit(lambda: 1 / 0)
    cancelled = executor.submit(lambda: pytest.fail("ran after cancel"))
    assert cancelled.cancel()
    later = executor.submit(lambda x: x * 2, 21)
    gate.set()
    executor.shutdown(wait=True)
    assert first.result() is True
    assert isinstance(failing.exception(), ZeroDivisionError)
    assert later.result() == 42
    with pytest.raises(RuntimeError):
        executor.submit(print)


def test_shutdown_with_cancel_futures_drops_queued_work() -> None:
    executor = SenderThreads(1)
    gate = threading.Event()
    running = executor.submit(gate.wait, 5)
    queued = [executor.submit(lambda: pytest.fail("ran after shutdown")) for _ in range(3)]
    time.sleep(0.05)  # the first is under way
    executor.shutdown(wait=False, cancel_futures=True)
    gate.set()
    assert running.result(timeout=5) is True
    assert all(future.cancelled() for future in queued)


def test_work_runs_in_the_context_of_whoever_submitted_it() -> None:
    """A send task binds release_id and task_id for its log lines (structlog's contextvars);
    the SMTP conversations run in these threads, and their lines carried neither."""
    logs.bind(release_id=7)
    try:
        with SenderThreads(2) as threads:
            seen = threads.submit(structlog.contextvars.get_contextvars).result(timeout=5)
    finally:
        logs.clear()
    assert seen["release_id"] == 7
