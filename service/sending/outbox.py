"""What sending needs from the process it runs in, handed in by the edge that runs it.

A worker builds one `Outbox` per task from its Flask app (workers/outbox.py); a test builds
one from its own parts. Nothing here reaches for an app, a Celery task or a global.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import redis

from service.config import Settings
from service.db import utcnow
from service.domain.release_messages import ReleaseMessage
from service.models import Release
from service.sending.control import Ring
from service.sending.envelope import EnvelopeSenders
from service.sending.ledger import SessionFactory
from service.sending.messages import Composer
from service.sending.transport import SendError, Transport


@dataclass(frozen=True)
class Outbox:
    open_session: SessionFactory  # a transaction per use: commits on success, else rolls back
    redis: redis.Redis  # journals, the SEND_RATE bucket, the invitations' lock
    transport: Transport  # the process's relay pool: kept connections, shared by threads
    settings: Settings
    composer: Composer
    messages: Callable[[Release, str], ReleaseMessage]  # composed once, then cached
    ring: Ring  # enqueue a task by name (the tasks each step owes)
    stop_requested: Callable[[], bool] = lambda: False  # a warm shutdown: stop at a safe point
    executor: Executor | None = None  # sends `window` messages at once; None: one by one
    window: int = 1  # messages in flight at once over `executor`
    now: Callable[[], datetime] = utcnow

    @cached_property
    def envelope(self) -> EnvelopeSenders:
        """Each message's envelope sender: VERP under BOUNCE_ADDRESS, or MAIL_FROM."""
        return EnvelopeSenders.from_settings(self.settings)


class TryLater(Exception):
    """The server said "not now" (4xx, connection trouble), or refused every message (auth,
    sender, TLS): ours to fix, so the work is tried again after a backoff."""

    def __init__(self, error: SendError) -> None:
        super().__init__(str(error))
        self.error = error
