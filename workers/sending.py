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
from dataclasses import dataclass
from datetime import timedelta

import redis
from sqlalchemy.orm import Session

from service.app_state import session_scope
from service.db import utcnow
from service.domain import delivery, releases
from service.domain.mail_headers import HeaderError
from service.domain.refusals import Blame, RefusalJudge, Reply, Stage
from service.domain.release_messages import ReleaseMessage
from service.models import DeliveryStatus, Release, ReleaseStatus
from workers.ratelimit import SendRateLimiter, Unlimited
from workers.smtp import (
    Mailer,
    NoSmtpUtf8Error,
    PermanentSendError,
    SendError,
    TransientSendError,
)

log = logging.getLogger(__name__)

BATCH_SIZE = 500
CHECK_EVERY = 0.25  # seconds between looks at pause and cancel
READERS_CHECK_EVERY = 1.0  # seconds between looks for readers who left during the batch
FLUSH_EVERY = 0.25  # seconds between database writes of what was sent
FLUSH_COUNT = 200
SHUTTING_DOWN = "shutting down"
# Marks the rows a relay-wide refusal gave back: after a resume, they do not count towards a
# new pattern (else a run of genuinely dead addresses would pause the send at every resume).
GIVEN_BACK = "given back unblamed: "
UNJUDGED_TRIES = 3  # a refusal with nobody after it to compare is tried this often, unblamed
MALFORMED = PermanentSendError(
    553, "5.1.3 the address is not a plain local@domain address", stage=Stage.RCPT
)


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
        stop_requested: Callable[[], bool] = lambda: False,
    ) -> None:
        """`stop_requested`: looked at before each message; once true, the batch gives its
        unsent rows back and returns (a warm shutdown)."""
        self.lease = lease
        self.retry_seconds = retry_seconds
        self.owner = owner
        self.redis = redis_client
        self.mailer = mailer
        self.make_message = make_message
        self.mail_from = mail_from
        self.stop_requested = stop_requested
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
        judge: RefusalJudge[delivery.Recipient] = RefusalJudge()
        last_check = last_flush = last_readers_check = leased = time.monotonic()
        renew_every = self.lease.total_seconds() / 3
        journal = SendJournal(self.redis, self.owner)
        try:
            while queue:
                if self.stop_requested():
                    self._give_back(judge.holding, list(queue), result, SHUTTING_DOWN)
                    judge.release_held()
                    queue.clear()
                    return
                now_mono = time.monotonic()
                if now_mono - last_check >= CHECK_EVERY:
                    last_check = now_mono
                    readers = now_mono - last_readers_check >= READERS_CHECK_EVERY
                    if readers:
                        last_readers_check = now_mono
                    if self._interrupted(release_id, queue, judge, result, check_readers=readers):
                        return
                renew = now_mono - leased >= renew_every
                if renew or (
                    sent and (now_mono - last_flush >= FLUSH_EVERY or len(sent) >= FLUSH_COUNT)
                ):
                    last_flush = now_mono
                    # The lease is renewed now and then, not at every flush: it is long.
                    mine = [r.delivery_id for r in (*judge.holding, *queue)] if renew else []
                    self._flush(sent, mine)
                    if renew:
                        leased = now_mono
                    sent = []
                recipient = queue.popleft()
                try:
                    data = messages[recipient.language].for_recipient(
                        recipient.email, recipient.uid
                    )
                except HeaderError:  # e.g. an encoded word or quotes in a hand-written row
                    self._fail([(recipient, MALFORMED.reply)], result)
                    continue
                if not self.limiter.acquire(self.stop_requested):
                    queue.appendleft(recipient)
                    continue  # asked to stop while waiting for the rate: the loop gives back
                try:
                    self.mailer.send_raw(self.mail_from, [recipient.email], data)
                except NoSmtpUtf8Error as error:
                    # The relay lacks SMTPUTF8 for this valid address: this delivery fails
                    # with the reason, unblamed, and says nothing to the judge about others.
                    self._fail_unblamed(recipient, error.detail, result)
                except TransientSendError as error:
                    if error.systemic:
                        tried = [*judge.holding, recipient]
                        untried = list(queue)
                        judge.release_held()
                        queue.clear()
                        self._outage(release_id, tried, untried, error, result)
                        return
                    self._defer([recipient], error, result)
                except PermanentSendError as error:
                    given_back = (recipient.last_error or "").startswith(GIVEN_BACK)
                    if judge.refused(
                        recipient, recipient.email, error.reply, given_back_before=given_back
                    ):
                        refused = judge.holding
                        untried = list(queue)
                        judge.release_held()
                        queue.clear()
                        self._halt(release_id, refused, untried, str(error), result)
                        return
                else:
                    # Counted first: should the journal write fail, the flush still records it.
                    sent.append(recipient.delivery_id)
                    result.sent += 1
                    journal.add(recipient.delivery_id)
                    blamed = judge.delivered()
                    if blamed:  # others get through: those refusals were about the readers
                        self._fail(blamed, result)
        finally:
            self._settle_unjudged(release_id, judge, result)
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
        judge: RefusalJudge[delivery.Recipient],
        result: BatchResult,
        *,
        check_readers: bool,
    ) -> bool:
        """Pause and cancel take effect between messages; so does a reader's unsubscribe."""
        with session_scope() as session:
            release = session.get(Release, release_id)
            status = release.status if release else ReleaseStatus.CANCELLED
            # Refusals still unjudged go back unjudged: a pause or cancel says nothing of them.
            held, untried = judge.holding, list(queue)
            ids = [r.delivery_id for r in (*held, *untried)]
            if status is ReleaseStatus.PAUSED:
                judge.release_held()
                queue.clear()
                self._return_rows(session, held, untried, delay=timedelta(0))
                result.stopped, result.deferred = "paused", result.deferred + len(ids)
                return True
            if status is not ReleaseStatus.SENDING:
                judge.release_held()
                queue.clear()
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

    def _return_rows(
        self,
        session: Session,
        tried: list[delivery.Recipient],
        untried: list[delivery.Recipient],
        *,
        delay: timedelta,
        error: object = None,
        tried_error: str | None = None,
    ) -> None:
        """Give rows back as owed after `delay`: those offered to the server (`tried`, with
        `tried_error` if given) and those never offered, whose claim is not an attempt."""
        now = utcnow()
        text = str(error) if error is not None else None
        for rows, was_tried in ((tried, True), (untried, False)):
            delivery.defer(
                session,
                [r.delivery_id for r in rows],
                owner=self.owner,
                now=now,
                delay=delay,
                error=(tried_error or text) if was_tried else text,
                tried=was_tried,
            )

    def _outage(
        self,
        release_id: int,
        tried: list[delivery.Recipient],
        untried: list[delivery.Recipient],
        error: SendError,
        result: BatchResult,
    ) -> None:
        """The server or the network is down for everyone: give the batch back, try later."""
        log.warning("release %s: SMTP unavailable (%s); retrying later", release_id, error)
        with session_scope() as session:
            self._return_rows(
                session, tried, untried, delay=timedelta(seconds=self.retry_seconds), error=error
            )
        result.deferred += len(tried) + len(untried)
        result.stopped = "smtp unavailable"

    def _halt(
        self,
        release_id: int,
        refused: list[delivery.Recipient],
        untried: list[delivery.Recipient],
        reason: str,
        result: BatchResult,
    ) -> None:
        """Refused for everyone (auth, sender, relay, the message): pause the release with the
        server's reply, blame no reader. The readers refused so far are marked as given back."""
        log.error(
            "release %s paused: the mail server refuses every message (%s)", release_id, reason
        )
        with session_scope() as session:
            self._return_rows(
                session, refused, untried, delay=timedelta(0), tried_error=GIVEN_BACK + reason
            )
            release = session.get(Release, release_id)
            if release is not None and release.status is ReleaseStatus.SENDING:
                releases.pause(session, release_id, reason=reason[:300])
        result.deferred += len(refused) + len(untried)
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
                tried=False,
            )
            release = session.get(Release, release_id)
            if release is not None and release.status is ReleaseStatus.SENDING:
                releases.pause(
                    session, release_id, reason=f"email cannot be written: {error}"[:300]
                )
        result.deferred += len(recipients)
        result.stopped = "paused: email cannot be written"

    def _give_back(
        self,
        held: list[delivery.Recipient],
        untried: list[delivery.Recipient],
        result: BatchResult,
        reason: str,
    ) -> None:
        """Rows this batch will not send after all go back as owed, due at once, unblamed."""
        with session_scope() as session:
            self._return_rows(session, held, untried, delay=timedelta(0))
        result.deferred += len(held) + len(untried)
        result.stopped = reason

    def _settle_unjudged(
        self, release_id: int, judge: RefusalJudge[delivery.Recipient], result: BatchResult
    ) -> None:
        """Refusals the batch ended on, with nobody after them to compare. Two or more of the
        same with nothing delivered (a small batch, the end of a send) are the relay's answer:
        pause. Otherwise tried again later (the next try may see what others get), and after
        UNJUDGED_TRIES failed unblamed."""
        pattern = judge.pattern
        if pattern is not None and judge.ends_unjudged():
            refused = judge.holding
            judge.release_held()
            self._halt(release_id, refused, [], str(pattern), result)
            return
        held = judge.release_held()
        if not held:
            return
        settled = [(r, reply) for r, reply in held if r.attempts >= UNJUDGED_TRIES]
        if settled:
            self._fail(settled, result, blame=False)
        with session_scope() as session:
            for recipient, reply in held:
                if recipient.attempts < UNJUDGED_TRIES:
                    delivery.defer(
                        session,
                        [recipient.delivery_id],
                        owner=self.owner,
                        now=utcnow(),
                        error=str(reply),
                        retry_base=self.retry_seconds,
                    )
                    result.deferred += 1

    def _fail_unblamed(
        self, recipient: delivery.Recipient, reason: str, result: BatchResult
    ) -> None:
        """This delivery cannot be made through this relay (not the reader's fault, not a
        refusal of everyone): it fails with `reason`; no bounce is scored."""
        with session_scope() as session:
            delivery.mark_done(
                session,
                [recipient.delivery_id],
                DeliveryStatus.FAILED,
                owner=self.owner,
                error=reason,
            )
        result.failed += 1

    def _fail(
        self,
        refused: list[tuple[delivery.Recipient, Reply]],
        result: BatchResult,
        *,
        blame: bool = True,
    ) -> None:
        """Refused for good: the deliveries fail; with `blame`, each reply counts against its
        reader as `Reply.blame` says."""
        with session_scope() as session:
            now = utcnow()
            for recipient, reply in refused:
                delivery.mark_done(
                    session,
                    [recipient.delivery_id],
                    DeliveryStatus.FAILED,
                    owner=self.owner,
                    error=str(reply),
                )
                if blame and reply.blame is not Blame.NONE:
                    delivery.record_hard_bounce(
                        session,
                        recipient.subscriber_id,
                        unknown_user=reply.blame is Blame.SUPPRESS,
                        now=now,
                    )
        result.failed += len(refused)
