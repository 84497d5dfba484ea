"""The parts of the send's unit specs: `RecordingTransport`, a double of our own Transport seam
that records every message and answers as told, and rows written as planning leaves them."""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy

from sqlalchemy import insert, select

from service.db import Database
from service.domain.refusals import Stage
from service.models import (
    Delivery,
    DeliveryStatus,
    Release,
    ReleaseStatus,
    Subscriber,
    SubscriberStatus,
)
from service.sending.transport import SENT, OnSent, Outcome, TransientSendError, error_for
from tests.rows import subscriber_rows

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])
# What the double answers, by the code a server would give (RFC 5321 §4.2, RFC 3463).
REPLIES = {
    421: "4.3.2 Service not available, closing transmission channel",
    451: "4.7.1 Greylisted, please try again later",
    550: "5.1.1 <{address}>: Recipient address rejected: User unknown",
}
DROP = "drop"  # the connection goes away with no reply


@dataclass
class Call:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def to(self) -> str:
        return str(message_from_bytes(self.data, policy=policy.default)["To"])

    @property
    def message_id(self) -> str:
        return str(message_from_bytes(self.data, policy=policy.default)["Message-ID"])


@dataclass
class RecordingTransport:
    """Records every message handed to it, and answers as told: per address, a list of
    answers taken in turn (250, 421, 451, 550, DROP, or a (code, text) pair); 250 once an
    address's list is used up. `on_call(n)` runs before the n-th answer (1-based)."""

    answers: dict[str, list[int | str | tuple[int, str]]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    closed: int = 0
    on_call: dict[int, object] = field(default_factory=dict)
    delay: float = 0.0  # seconds each message takes, as a far relay's round trips would
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def answer(self, address: str, *answers: int | str | tuple[int, str]) -> None:
        self.answers.setdefault(address, []).extend(answers)

    def deliver(
        self, sender: str, recipients: list[str], data: bytes, on_sent: OnSent | None = None
    ) -> Outcome:
        """Thread-safe: a batch with a window of several calls it from many threads."""
        with self._lock:
            self.calls.append(Call(sender, list(recipients), data))
            hook = self.on_call.get(len(self.calls))
            queue = self.answers.get(recipients[0], [])
            answer = queue.pop(0) if queue else 250
        if callable(hook):
            hook()
        if self.delay:
            time.sleep(self.delay)
        if answer == 250:
            if on_sent is not None:
                on_sent()
            return SENT
        if answer == DROP:
            return TransientSendError(0, "the server closed the connection", systemic=True)
        code, text = answer if isinstance(answer, tuple) else (answer, REPLIES[int(answer)])
        return error_for(code, text.format(address=recipients[0]), Stage.RCPT)

    def close(self) -> None:
        self.closed += 1

    @property
    def addressed(self) -> list[str]:
        return [call.recipients[0] for call in self.calls]


def add_release(
    db: Database, *, status: ReleaseStatus = ReleaseStatus.SENDING, language: str = "nb"
) -> int:
    with db.session_scope() as session:
        release = Release(
            slug=f"r-{uuid.uuid4().hex[:8]}",
            title="Gagarin",
            summary="Vostok 1",
            body="Tekst",
            body_html="<p>Tekst</p>",
            language=language,
            status=status,
            published_at=NOW,
            send_started_at=NOW,
            planned_at=NOW,
        )
        session.add(release)
        session.flush()
        return release.id


def add_readers(
    db: Database,
    emails: list[str],
    *,
    status: SubscriberStatus = SubscriberStatus.CONFIRMED,
    language: str = "nb",
) -> list[int]:
    rows = subscriber_rows(emails, status=status, language=language, now=NOW)
    with db.session_scope() as session:
        return list(session.scalars(insert(Subscriber).returning(Subscriber.id), rows))


def add_deliveries(db: Database, release_id: int, subscriber_ids: list[int]) -> list[int]:
    """Owed rows, one per reader, as planning leaves them."""
    rows = [
        {
            "release_id": release_id,
            "subscriber_id": sid,
            "language": "nb",
            "status": DeliveryStatus.PENDING,
            "attempts": 0,
        }
        for sid in subscriber_ids
    ]
    with db.session_scope() as session:
        return sorted(session.scalars(insert(Delivery).returning(Delivery.id), rows))


def rows(db: Database) -> dict[str, Delivery]:
    """Every delivery row, by its reader's address."""
    with db.session_scope() as session:
        found = session.execute(
            select(Subscriber.email, Delivery).join(
                Subscriber, Subscriber.id == Delivery.subscriber_id
            )
        ).all()
        return {email: row for email, row in found}
