"""Sending the desk's confirmation invitations (domain/invitations), one run at a time.

One message per SEND_RATE token, from the bucket release sends take theirs from. A second run
finds the lock held and leaves the work to the first, which goes on until none is left.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import select

from service.domain import invitations, notices
from service.domain.mail_headers import HeaderError
from service.models import Subscriber
from service.sending import meters
from service.sending.jobs import limiter
from service.sending.outbox import Outbox, TryLater
from service.sending.transport import SendError, Sent, TransientSendError
from service.task_names import TaskName

log = logging.getLogger(__name__)

INVITATIONS_LOCK = "pressroom:invitations:lock"  # held by the one run sending invitations
INVITATIONS_LOCK_SECONDS = 120  # renewed at every message; a crashed run's lapses after this


def send_invitations(box: Outbox) -> dict[str, int]:
    """Send every invitation waiting: counts of "sent", "refused" and "skipped", or
    {"busy": 1} when another run holds the lock. A warm shutdown rings a new run for another
    worker. A 4xx or a refusal of all mail stops the run (TryLater); the rows keep waiting."""
    client = box.redis
    owner = uuid.uuid4().hex
    if not client.set(INVITATIONS_LOCK, owner, nx=True, ex=INVITATIONS_LOCK_SECONDS):
        return {"busy": 1}
    bucket = limiter(box)
    counts = {"sent": 0, "refused": 0, "skipped": 0}
    handled: set[str] = set()  # never twice in one run, whatever the rows say
    try:
        # Passes over the waiting rows by id, until one finds none new: a round started
        # meanwhile may have rows behind this pass (its ring found the lock held).
        while True:
            fresh, last_id = 0, 0
            while batch := _due(box, last_id):
                for subscriber_id, uid in batch:
                    last_id = subscriber_id
                    if uid in handled:
                        continue
                    if box.stop_requested() or not bucket.acquire(box.stop_requested):
                        box.ring(TaskName.SEND_INVITATIONS)  # another worker goes on
                        return counts
                    client.expire(INVITATIONS_LOCK, INVITATIONS_LOCK_SECONDS)
                    handled.add(uid)
                    fresh += 1
                    outcome = _send_one(box, uid)
                    counts[outcome] += 1
                    meters.NOTICES.labels("invitation", outcome).inc()
            if not fresh:
                break
    except SendError as error:
        meters.NOTICES.labels("invitation", "deferred").inc()
        log.log(
            logging.ERROR if error.systemic else logging.WARNING,
            "invitations deferred: %s",
            error,
        )
        raise TryLater(error) from None
    finally:
        if client.get(INVITATIONS_LOCK) == owner.encode():
            client.delete(INVITATIONS_LOCK)
    log.info("invitations: %s", counts)
    return counts


def _due(box: Outbox, after_id: int) -> list[tuple[int, str]]:
    with box.open_session() as session:
        return invitations.due(session, after_id=after_id)


def _send_one(box: Outbox, subscriber_uid: str) -> str:
    """One invitation: "sent", "refused" (this address, for good) or "skipped" (no longer
    wanted). Raises the SendError of a 4xx, or of a refusal of all mail."""
    with box.open_session() as session:
        subscriber = session.scalar(select(Subscriber).where(Subscriber.uid == subscriber_uid))
        if subscriber is None or not invitations.still_wanted(session, subscriber):
            return "skipped"
        try:
            message = notices.confirmation_email(box.composer.notices, subscriber, now=box.now())
            envelope_sender = box.envelope.for_subscriber(subscriber.id)
        except HeaderError as error:
            log.warning("invitation to subscriber %s not written: %s", subscriber_uid, error)
            invitations.mark_sent(subscriber, now=box.now())
            return "refused"
    outcome = box.transport.deliver(envelope_sender, [message.recipient], message.data)
    result = "sent"
    if not isinstance(outcome, Sent):
        if isinstance(outcome, TransientSendError) or outcome.systemic:
            raise outcome
        log.warning("invitation to subscriber %s refused: %s", subscriber_uid, outcome)
        result = "refused"
    with box.open_session() as session:
        subscriber = session.scalar(select(Subscriber).where(Subscriber.uid == subscriber_uid))
        if subscriber is not None:
            invitations.mark_sent(subscriber, now=box.now())
    return result
