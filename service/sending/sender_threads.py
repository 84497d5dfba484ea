"""The threads a worker process sends over: an Executor whose thread limit can grow.

A pool of N connections to a near relay keeps N threads busy; to a far one, 2N (a message
waits for its reply while the next goes out over its connection: relay_pool). Threads start as
work queues up, up to the limit, and stay; `grow` raises the limit while work is under way.
(concurrent.futures.ThreadPoolExecutor fixes its limit at construction.)
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from queue import SimpleQueue
from typing import Any

_Work = tuple[Future[Any], contextvars.Context, Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class SenderThreads(Executor):
    def __init__(self, threads: int, *, name: str = "smtp") -> None:
        if threads < 1:
            raise ValueError("SenderThreads needs at least one thread")
        self._limit = threads
        self._name = name
        self._queue: SimpleQueue[_Work | None] = SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads waiting for work
        self._queued = 0  # work not yet taken by a thread
        self._lock = threading.Lock()
        self._shut = False

    @property
    def limit(self) -> int:
        return self._limit

    def grow(self, threads: int) -> None:
        """Allow up to `threads` threads from now on (never fewer than now)."""
        with self._lock:
            self._limit = max(self._limit, threads)
            self._start_wanted()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._queued += 1
            # The submitter's context goes with the work: its log lines keep the task's
            # release_id and task_id (structlog's contextvars), as in the task's own thread.
            self._queue.put((future, contextvars.copy_context(), fn, args, kwargs))
            self._start_wanted()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Work already submitted still runs (unless `cancel_futures`); then the threads end."""
        with self._lock:
            self._shut = True
            threads = list(self._threads)
            for _ in threads:
                self._queue.put(None)
        if cancel_futures:
            for future in self._take_queued():
                future.cancel()
        if wait:
            for thread in threads:
                thread.join()

    def _take_queued(self) -> list[Future[Any]]:
        taken: list[Future[Any]] = []
        requeue = 0
        while not self._queue.empty():
            work = self._queue.get_nowait()
            if work is None:
                requeue += 1
            else:
                taken.append(work[0])
        for _ in range(requeue):
            self._queue.put(None)
        return taken

    def _start_wanted(self) -> None:
        """Start threads for queued work no idle thread will take. Holds the lock."""
        while self._queued > self._idle and len(self._threads) < self._limit:
            thread = threading.Thread(
                target=self._run, name=f"{self._name}_{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            self._idle += 1  # counted before it starts: the loop must not start another
            thread.start()

    def _run(self) -> None:
        waiting = True  # counted idle by _start_wanted
        while True:
            if not waiting:
                with self._lock:
                    self._idle += 1
            work = self._queue.get()
            with self._lock:
                self._idle -= 1
                if work is not None:
                    self._queued -= 1
            waiting = False
            if work is None:
                return
            future, context, fn, args, kwargs = work
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = context.run(fn, *args, **kwargs)
            except BaseException as error:
                future.set_exception(error)
            else:
                future.set_result(result)
            del work, future, context, fn, args, kwargs
