"""Sending one batch of a release: claim, render, send over one connection, record.

Crash safety: every message sent is written at once to a Redis set of the batch's own (a
journal named by the lease owner) and to the database in bulk a few times a second. A worker
killed mid-batch leaves rows in 'sending' with a lease; the sweep later marks those in that
worker's journal sent and gives the rest back. So a reader can get a duplicate only if the
worker died between the server's "250 OK" and the journal write.

The journal is named by the lease owner (host, pid and a random id per run), never by a
release or delivery id: ids repeat across databases sharing one Redis, and a stale journal must
never pass for this batch's.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis
from sqlalchemy.orm import Session

from service.db import session_scope, utcnow
from service.domain import delivery, releases
from service.domain.mail_headers import HeaderError
from service.domain.release_messages import ReleaseMessage
from service.models import DeliveryStatus, Release, ReleaseStatus
from workers.ratelimit import SendRateLimiter, Unlimited
from workers.smtp import Mailer, PermanentSendError, SendError, TransientSendError

log = logging.getLogger(__name__)

BATCH_SIZE = 500
CHECK_EVERY = 0.25  # seconds between looks at pause and cancel
READERS_CHECK_EVERY = 1.0  # seconds between looks for readers who left during the batch
FLUSH_EVERY = 0.25  # seconds between database writes of what was sent
FLUSH_COUNT = 200
POLICY_STRIKES = 3
NOT_ASCII = PermanentSendError(
    553, "5.1.3 the address is not ASCII and SMTPUTF8 is not used"
)  # consecutive relay/policy refusals that mean "it is us, not them"
MALFORMED = PermanentSendError(553, "5.1.3 the address is not a plain local@domain address")


JOURNAL_TTL_SECONDS = 7 * 24 * 3600  # far beyond any lease: only a forgotten journal expires


def journal_key(owner: str) -> str:
    return f"pressroom:sent:{owner}"


class SendJournal:
    """One batch's record in Redis of each message the server took, written before the next
    message goes out: what the sweep consults when the worker vanished mid-batch."""

    def __init__(self, client: redis.Redis, owner: str) -> None:
        self._redis = client
        self._key = journal_key(owner)
        self._expiring = False

    def add(self, delivery_id: int) -> None:
        if self._expiring:
            self._redis.sadd(self._key, delivery_id)
            return
        pipe = self._redis.pipeline(transaction=False)
        pipe.sadd(self._key, delivery_id)
        pipe.expire(self._key, JOURNAL_TTL_SECONDS)
        pipe.execute()
        self._expiring = True

    def close(self) -> None:
        """Forget the batch: call once its rows are recorded in the database."""
        self._redis.delete(self._key)


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    skipped: int = 0
    stopped: str | None = None
    more: bool = False
    bounced: list[tuple[int, bool]] = field(default_factory=list)


class BatchSender:
    def __init__(
        self,
        *,
        owner: str,
        redis_client: redis.Redis,
        mailer: Mailer,
        make_message: Callable[[Release, str], ReleaseMessage],
        mail_from: str,
        send_rate: float | None,
        lease: timedelta = delivery.LEASE,
        retry_seconds: float = 30.0,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.lease = lease
        self.retry_seconds = retry_seconds
        self.owner = owner
        self.redis = redis_client
        self.mailer = mailer
        self.make_message = make_message
        self.mail_from = mail_from
        self.limiter = SendRateLimiter(redis_client, send_rate) if send_rate else Unlimited()
        # A slow SEND_RATE must not outlast the lease: take only what fits in half of it.
        if send_rate:
            batch_size = max(1, min(batch_size, int(send_rate * lease.total_seconds() / 2)))
        self.batch_size = batch_size

    def run(self, release_id: int) -> BatchResult:
        result = BatchResult()
        with session_scope() as session:
            release = session.get(Release, release_id)
            if release is None or release.status is not ReleaseStatus.SENDING:
                result.stopped = "not sending"
                return result
            claimed = delivery.claim(
                session,
                release_id,
                owner=self.owner,
                limit=self.batch_size,
                now=utcnow(),
                lease=self.lease,
            )
            result.claimed = len(claimed)
            if not claimed:
                return result
            keep, skip = delivery.recipients(session, claimed)
            delivery.mark_done(session, skip, DeliveryStatus.SKIPPED, owner=self.owner)
            result.skipped += len(skip)
            try:
                messages = {
                    lang: self.make_message(release, lang) for lang in {r.language for r in keep}
                }
            except HeaderError as error:
                unwritable: HeaderError | None = error
            else:
                unwritable = None
        if unwritable is not None:
            self._unwritable(release_id, keep, unwritable, result)
            return result
        self._send(release_id, deque(keep), messages, result)
        result.more = result.claimed == self.batch_size and result.stopped is None
        return result

    def _send(
        self,
        release_id: int,
        queue: deque[delivery.Recipient],
        messages: dict[str, ReleaseMessage],
        result: BatchResult,
    ) -> None:
        sent: list[int] = []
        suspects: list[delivery.Recipient] = []
        last_check = last_flush = last_readers_check = leased = time.monotonic()
        renew_every = self.lease.total_seconds() / 3
        journal = SendJournal(self.redis, self.owner)
        try:
            while queue:
                now_mono = time.monotonic()
                if now_mono - last_check >= CHECK_EVERY:
                    last_check = now_mono
                    readers = now_mono - last_readers_check >= READERS_CHECK_EVERY
                    if readers:
                        last_readers_check = now_mono
                    if self._interrupted(release_id, queue, result, check_readers=readers):
                        return
                renew = now_mono - leased >= renew_every
                if renew or (
                    sent and (now_mono - last_flush >= FLUSH_EVERY or len(sent) >= FLUSH_COUNT)
                ):
                    last_flush = now_mono
                    # The lease is renewed now and then, not at every flush: it is long.
                    self._flush(sent, [r.delivery_id for r in queue] if renew else [])
                    if renew:
                        leased = now_mono
                    sent = []
                recipient = queue.popleft()
                if not recipient.email.isascii():
                    # Signup and import never store one; a row written by other means could.
                    # Without SMTPUTF8 no server can take it: that reader's delivery fails,
                    # and the batch goes on (it would else crash here at every retry).
                    self._fail([recipient], NOT_ASCII, result)
                    continue
                try:
                    data = messages[recipient.language].for_recipient(
                        recipient.email, recipient.uid
                    )
                except HeaderError:  # e.g. an encoded word or quotes in a hand-written row
                    self._fail([recipient], MALFORMED, result)
                    continue
                self.limiter.acquire()
                try:
                    self.mailer.send_raw(self.mail_from, [recipient.email], data)
                except TransientSendError as error:
                    if error.systemic:
                        self._outage(release_id, [recipient, *suspects, *queue], error, result)
                        queue.clear()
                        suspects = []
                        return
                    self._defer([recipient], error, result)
                except PermanentSendError as error:
                    if error.systemic:
                        self._halt(release_id, [recipient, *suspects, *queue], error, result)
                        queue.clear()
                        suspects = []
                        return
                    if error.policy:
                        suspects.append(recipient)
                        if len(suspects) >= POLICY_STRIKES:
                            self._halt(release_id, [*suspects, *queue], error, result)
                            queue.clear()
                            suspects = []
                            return
                        continue
                    self._fail([recipient], error, result)
                else:
                    # Counted first: should the journal write fail, the flush still records it.
                    sent.append(recipient.delivery_id)
                    result.sent += 1
                    journal.add(recipient.delivery_id)
                    if suspects:  # others get through: those refusals were about the readers
                        self._fail(suspects, None, result)
                        suspects = []
        finally:
            if suspects:
                self._fail(suspects, None, result)
            self._flush(sent, [])
            journal.close()  # everything sent is now in the database

    def _flush(self, sent: list[int], still_mine: list[int]) -> None:
        with session_scope() as session:
            now = utcnow()
            delivery.mark_sent(session, sent, owner=self.owner, now=now)
            delivery.renew_lease(session, still_mine, owner=self.owner, now=now, lease=self.lease)

    def _interrupted(
        self,
        release_id: int,
        queue: deque[delivery.Recipient],
        result: BatchResult,
        *,
        check_readers: bool,
    ) -> bool:
        """Pause and cancel take effect between messages; so does a reader's unsubscribe."""
        with session_scope() as session:
            release = session.get(Release, release_id)
            status = release.status if release else ReleaseStatus.CANCELLED
            ids = [r.delivery_id for r in queue]
            if status is ReleaseStatus.PAUSED:
                delivery.defer(session, ids, owner=self.owner, now=utcnow(), delay=timedelta(0))
                result.stopped, result.deferred = "paused", result.deferred + len(ids)
                return True
            if status is not ReleaseStatus.SENDING:
                delivery.mark_done(session, ids, DeliveryStatus.CANCELLED, owner=self.owner)
                result.stopped = "cancelled"
                return True
            if not check_readers:
                return False
            confirmed = delivery.still_confirmed(session, (r.subscriber_id for r in queue))
            gone = [r for r in queue if r.subscriber_id not in confirmed]
            if gone:
                delivery.mark_done(
                    session, [r.delivery_id for r in gone], DeliveryStatus.SKIPPED, owner=self.owner
                )
                result.skipped += len(gone)
                for recipient in gone:
                    queue.remove(recipient)
        return False

    def _defer(
        self, recipients: list[delivery.Recipient], error: SendError, result: BatchResult
    ) -> None:
        with session_scope() as session:
            delivery.defer(
                session,
                [r.delivery_id for r in recipients],
                owner=self.owner,
                now=utcnow(),
                error=str(error),
                retry_base=self.retry_seconds,
            )
        result.deferred += len(recipients)

    def _outage(
        self,
        release_id: int,
        recipients: list[delivery.Recipient],
        error: SendError,
        result: BatchResult,
    ) -> None:
        """The server or the network is down for everyone: give the batch back, try later."""
        log.warning("release %s: SMTP unavailable (%s); retrying later", release_id, error)
        with session_scope() as session:
            delivery.defer(
                session,
                [r.delivery_id for r in recipients],
                owner=self.owner,
                now=utcnow(),
                delay=timedelta(seconds=self.retry_seconds),
                error=str(error),
            )
        result.deferred += len(recipients)
        result.stopped = "smtp unavailable"

    def _halt(
        self,
        release_id: int,
        recipients: list[delivery.Recipient],
        error: SendError,
        result: BatchResult,
    ) -> None:
        """Refused for everyone (auth, sender, relay): pause the release, blame no reader."""
        log.error(
            "release %s paused: the mail server refuses every message (%s)", release_id, error
        )
        with session_scope() as session:
            delivery.defer(
                session,
                [r.delivery_id for r in recipients],
                owner=self.owner,
                now=utcnow(),
                delay=timedelta(0),
                error=str(error),
            )
            release = session.get(Release, release_id)
            if release is not None and release.status is ReleaseStatus.SENDING:
                releases.pause(session, release_id, reason=f"mail server: {error}"[:300])
        result.deferred += len(recipients)
        result.stopped = "paused: mail server refuses"

    def _unwritable(
        self,
        release_id: int,
        recipients: list[delivery.Recipient],
        error: HeaderError,
        result: BatchResult,
    ) -> None:
        """The release holds text no header may carry (only a row stored before input refused
        it, or written by hand, can): pause it with the reason, blame no reader; it would
        else fail here at every retry and never finish."""
        log.error("release %s paused: its email cannot be written (%s)", release_id, error)
        with session_scope() as session:
            delivery.defer(
                session,
                [r.delivery_id for r in recipients],
                owner=self.owner,
                now=utcnow(),
                delay=timedelta(0),
                error=str(error)[:300],
            )
            release = session.get(Release, release_id)
            if release is not None and release.status is ReleaseStatus.SENDING:
                releases.pause(
                    session, release_id, reason=f"email cannot be written: {error}"[:300]
                )
        result.deferred += len(recipients)
        result.stopped = "paused: email cannot be written"

    def _fail(
        self, recipients: list[delivery.Recipient], error: SendError | None, result: BatchResult
    ) -> None:
        with session_scope() as session:
            now = utcnow()
            delivery.mark_done(
                session,
                [r.delivery_id for r in recipients],
                DeliveryStatus.FAILED,
                owner=self.owner,
                error=str(error) if error else "refused by policy",
            )
            for recipient in recipients:
                _bounce(session, recipient, error, now)
        result.failed += len(recipients)


def _bounce(
    session: Session, recipient: delivery.Recipient, error: SendError | None, now: datetime
) -> None:
    if error is None:
        return  # a policy refusal says nothing about the mailbox
    delivery.record_hard_bounce(
        session, recipient.subscriber_id, unknown_user=error.unknown_user, now=now
    )
