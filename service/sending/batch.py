"""One batch of a release: claim rows from the Ledger, send each through the Transport, record.

Written against two seams, in the manner of listmonk's Store and Messenger: a `Ledger` the batch
claims its rows from and records every outcome into (ledger.SqlLedger: the database), and a
`Transport` that takes the bytes of one message and answers with a typed outcome
(transport.SmtpMailer). The loop holds the rules of a send; the seams hold no rules.

Crash safety: every message sent is written at once to the batch's own journal (journal.py,
in Redis) and to the ledger in bulk a few times a second, so a worker killed mid-batch loses
nothing the sweep cannot find again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from datetime import timedelta
from queue import Empty, SimpleQueue
from typing import Protocol

from service.domain.corrections import OriginalCopy
from service.domain.digest_messages import Listed
from service.domain.mail_headers import HeaderError
from service.domain.refusals import RefusalJudge, Reply, Stage
from service.domain.release_messages import ReleaseMessage
from service.models import DeliveryStatus, Release, ReleaseStatus
from service.sending.ledger import Claim, Recipient
from service.sending.transport import (
    NoSmtpUtf8Error,
    Outcome,
    PermanentSendError,
    SendError,
    Sent,
    TransientSendError,
    Transport,
)

log = logging.getLogger(__name__)

BATCH_SIZE = 500
CHECK_EVERY = 0.25  # seconds between looks at pause and cancel
READERS_CHECK_EVERY = 1.0  # seconds between looks for readers who left during the batch
FLUSH_EVERY = 0.25  # seconds between database writes of what was sent
FLUSH_COUNT = 200
SHUTTING_DOWN = "shutting down"
REDIS_UNAVAILABLE = "redis unavailable"
REORDER_LIMIT = 4  # windows of answers that may wait behind one slow message
# Marks the rows a relay-wide refusal gave back: after a resume, they do not count towards a
# new pattern (else a run of genuinely dead addresses would pause the send at every resume).
GIVEN_BACK = "given back unblamed: "
UNJUDGED_TRIES = 3  # a refusal with nobody after it to compare is tried this often, unblamed
MALFORMED = PermanentSendError(
    553, "5.1.3 the address is not a plain local@domain address", stage=Stage.RCPT
)


class Addressed(Protocol):
    """A message composed once and addressed to each reader (ReleaseMessage, DigestMessages)."""

    def for_recipient(
        self, email: str, subscriber_uid: str, *, original: OriginalCopy | None = None
    ) -> bytes: ...


class Ledger(Protocol):
    """Where a batch claims its rows and records what became of each (ledger.SqlLedger).

    Every method is one transaction of its own; `owner` and `lease` are the batch's."""

    lease: timedelta

    def claim(self, release_id: int, *, limit: int) -> Claim | None:
        """Up to `limit` due rows, leased; None when the release is not sending."""
        ...

    def status(self, release_id: int) -> ReleaseStatus:
        """The release's status now (CANCELLED when it is gone)."""
        ...

    def still_confirmed(self, subscriber_ids: Iterable[int]) -> set[int]: ...

    def record_sent(self, delivery_ids: Sequence[int], *, renew: Sequence[int]) -> None:
        """The rows sent are sent; the lease on `renew` (still in hand) is renewed."""
        ...

    def finish(
        self, delivery_ids: Sequence[int], status: DeliveryStatus, *, error: str | None = None
    ) -> None:
        """Rows that will not be sent: failed, skipped or cancelled."""
        ...

    def fail(self, refused: Sequence[tuple[Recipient, Reply]], *, blame: bool) -> None:
        """Refused for good; with `blame`, each reply is a report to the bounce policy
        (the reader's fault or the release's, as bounce_policy's table says)."""
        ...

    def retry_later(self, deferred: Sequence[tuple[Recipient, str]], *, base: float) -> None:
        """Tried and deferred (a 4xx), each with its error: owed again after a backoff of
        about `base` seconds that grows with the row's attempts (ledger.backoff)."""
        ...

    def give_back(
        self,
        tried: Sequence[Recipient],
        untried: Sequence[Recipient],
        *,
        delay: timedelta,
        error: str | None = None,
        tried_error: str | None = None,
    ) -> None:
        """Owed again after `delay`: rows offered to the server, and rows never offered
        (whose claim is not counted as an attempt)."""
        ...

    def halt(
        self,
        release_id: int,
        tried: Sequence[Recipient],
        untried: Sequence[Recipient],
        *,
        reason: str,
        tried_error: str | None = None,
        untried_error: str | None = None,
    ) -> None:
        """Give the rows back, due at once, and pause the release with `reason`, in one
        transaction: no other batch may send them before the pause holds."""
        ...


class RateLimiter(Protocol):
    def acquire(self, stop: Callable[[], bool] = ...) -> bool: ...


class Journal(Protocol):
    def add(self, delivery_id: int) -> None: ...

    def close(self) -> None: ...


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    skipped: int = 0
    stopped: str | None = None
    more: bool = False


class JournalUnavailable(Exception):
    """A message not sent: its batch could not write its journal (or its rate bucket) and
    sends nothing more (BatchSender._stop_without_redis)."""


class BatchSender:
    def __init__(
        self,
        *,
        ledger: Ledger,
        transport: Transport,
        journal: Journal,
        limiter: RateLimiter,
        messages: Callable[[Release, str], ReleaseMessage],
        mail_from: str,
        digests: Callable[[Release, str, Mapping[str, Sequence[Listed]]], Addressed] | None = None,
        envelope: Callable[[int], str] | None = None,
        send_rate: float | None = None,
        retry_seconds: float = 30.0,
        batch_size: int = BATCH_SIZE,
        stop_requested: Callable[[], bool] = lambda: False,
        executor: Executor | None = None,
        window: int = 1,
    ) -> None:
        """`messages(release, language)`: the release's message in that language (built
        once, messages.Composer). `digests(run, language, listings)`: a digest run's messages
        in that language for the readers of a claim (digest_messages.DigestMessages); a sender
        without it sends no digest run. `envelope(delivery_id)`: the envelope sender of a
        reader's copy (envelope.EnvelopeSenders.for_delivery, a VERP address); None:
        `mail_from` for all.
        `send_rate` (messages a second, or None) only sizes the
        batch; `limiter` enforces it. `retry_seconds`: the first wait after a 4xx or an
        outage, growing with each attempt. `stop_requested`: looked at before each message; once
        true, the batch gives its unsent rows back and returns (a warm shutdown). `executor`
        runs `transport.deliver` for up to `window` messages at once (SMTP_CONNECTIONS);
        without one, each message is sent in this thread, one after the other."""
        self.ledger = ledger
        self.transport = transport
        self.journal = journal
        self.limiter = limiter
        self.messages = messages
        self.digests = digests
        self.mail_from = mail_from
        self.envelope = envelope
        self.retry_seconds = retry_seconds
        self.stop_requested = stop_requested
        self.executor = executor
        self.window = window if executor is not None else 1
        self._halting: str | None = None  # a refusal of everyone, waiting for those in flight
        self._answers: SimpleQueue[Future[Outcome]] = SimpleQueue()  # futures as answered
        self._unanswered = 0  # messages handed to the executor and not yet answered
        self._journaled: set[int] = set()  # journaled by the thread that sent them, unjudged
        # The journal or the rate bucket (Redis) failed: nothing more goes out.
        self._redis_away = threading.Event()
        # A slow SEND_RATE must not outlast the lease: take only what fits in half of it.
        if send_rate:
            lease_seconds = ledger.lease.total_seconds()
            batch_size = max(1, min(batch_size, int(send_rate * lease_seconds / 2)))
        self.batch_size = batch_size

    def run(self, release_id: int) -> BatchResult:
        result = BatchResult()
        claim = self.ledger.claim(release_id, limit=self.batch_size)
        if claim is None:
            result.stopped = "not sending"
            return result
        keep = claim.recipients
        result.claimed = len(keep) + claim.skipped
        result.skipped += claim.skipped
        if not result.claimed:
            return result
        languages = {r.language for r in keep}
        try:
            messages: dict[str, Addressed]
            if claim.listings is not None:
                assert self.digests is not None, "a digest run needs `digests`"
                messages = {
                    lang: self.digests(claim.release, lang, claim.listings) for lang in languages
                }
            else:
                messages = {lang: self.messages(claim.release, lang) for lang in languages}
        except HeaderError as error:
            self._unwritable(release_id, keep, error, result)
            return result
        self._send(release_id, deque(keep), messages, result)
        result.more = result.claimed == self.batch_size and result.stopped is None
        return result

    def _send(
        self,
        release_id: int,
        queue: deque[Recipient],
        messages: Mapping[str, Addressed],
        result: BatchResult,
    ) -> None:
        """Up to `window` messages in flight at once; their outcomes are judged in the order
        the messages went out. Whatever ends the batch early (a warm shutdown, a
        pause, an outage, a refusal of everyone) first waits for the messages in flight:
        those sent are recorded as sent, the rest go back with the untried."""
        sent: list[int] = []
        judge: RefusalJudge[Recipient] = RefusalJudge()
        in_flight: dict[Future[Outcome], Recipient] = {}
        self._halting = None
        self._answers = SimpleQueue()
        self._unanswered = 0
        self._journaled = set()
        self._redis_away.clear()
        last_check = last_flush = last_readers_check = leased = time.monotonic()
        renew_every = self.ledger.lease.total_seconds() / 3
        try:
            while queue or in_flight:
                if self._redis_away.is_set():
                    self._stop_without_redis(release_id, queue, judge, in_flight, sent, result)
                    return
                if queue and self.stop_requested():
                    held, untried = self._take_back(queue, judge, in_flight, sent, result)
                    self._give_back(held, untried, result, SHUTTING_DOWN)
                    return
                now_mono = time.monotonic()
                if queue and now_mono - last_check >= CHECK_EVERY:
                    last_check = now_mono
                    readers = now_mono - last_readers_check >= READERS_CHECK_EVERY
                    if readers:
                        last_readers_check = now_mono
                    if self._interrupted(
                        release_id, queue, judge, in_flight, sent, result, check_readers=readers
                    ):
                        return
                renew = now_mono - leased >= renew_every
                if renew or (
                    sent and (now_mono - last_flush >= FLUSH_EVERY or len(sent) >= FLUSH_COUNT)
                ):
                    last_flush = now_mono
                    # The lease is renewed now and then, not at every flush: it is long.
                    mine = (
                        [r.delivery_id for r in (*judge.holding, *queue, *in_flight.values())]
                        if renew
                        else []
                    )
                    self.ledger.record_sent(sent, renew=mine)
                    if renew:
                        leased = now_mono
                    sent = []
                self._fill(queue, messages, in_flight, result, until=last_check + CHECK_EVERY)
                if not in_flight:
                    continue
                # Outcomes are judged in the order the messages went out, as one connection
                # would have met them (the RefusalJudge weighs refusals "in a row"); a message
                # answered early waits for those before it, without holding its slot.
                can_fill = bool(queue) and self._halting is None and self._room(in_flight)
                self._await_answers(in_flight, can_fill=can_fill)
                while in_flight and (head := next(iter(in_flight))).done():
                    if self._redis_away.is_set():
                        break  # what is in flight, JournalUnavailable or not: _take_back
                    recipient = in_flight.pop(head)
                    ended = self._settle(
                        release_id, recipient, head.result(), queue, judge, in_flight, sent,
                        result,
                    )  # fmt: skip
                    if ended:
                        return
        finally:
            lost = self._drain(in_flight, sent, result)  # only when something raised
            if lost:
                log.error("release %s: %s rows left to the sweep", release_id, len(lost))
            self._settle_unjudged(release_id, judge, result)
            self.ledger.record_sent(sent, renew=[])
            self._forget_journal()

    def _forget_journal(self) -> None:
        """Everything sent is now in the database: the journal can go (if Redis is away,
        it expires by itself; the sweep reads journals of expired leases alone)."""
        try:
            self.journal.close()
        except Exception:
            if not self._redis_away.is_set():
                raise

    def _fill(
        self,
        queue: deque[Recipient],
        messages: Mapping[str, Addressed],
        in_flight: dict[Future[Outcome], Recipient],
        result: BatchResult,
        *,
        until: float,
    ) -> None:
        """Hand messages to the transport until `window` are in flight, SEND_RATE allowing;
        back by `until` (monotonic seconds) at the latest, so that a pause or a cancel is seen
        while the rate holds the window back. At least one message goes each time."""
        while (
            queue
            and self._halting is None
            and not self._redis_away.is_set()
            and self._room(in_flight)
        ):
            if in_flight and time.monotonic() >= until:
                return
            recipient = queue.popleft()
            try:
                data = messages[recipient.language].for_recipient(
                    recipient.email, recipient.uid, original=recipient.original
                )
            except HeaderError:  # e.g. an encoded word or quotes in a hand-written row
                self._fail([(recipient, MALFORMED.reply)], result)
                continue
            try:
                acquired = self.limiter.acquire(self.stop_requested)
            except Exception as error:  # the bucket lives in Redis
                log.warning("the SEND_RATE bucket is unavailable (%s)", type(error).__name__)
                self._redis_away.set()
                acquired = False
            if not acquired:
                queue.appendleft(recipient)  # the loop gives it back
                return
            in_flight[self._submit(recipient, data)] = recipient

    def _room(self, in_flight: dict[Future[Outcome], Recipient]) -> bool:
        """Whether another message may go: fewer than `window` unanswered, and fewer than
        REORDER_LIMIT windows answered but waiting to be judged behind a slow one. Sending in
        this thread, a message is answered as it is handed over: one at a time."""
        if self.executor is None:
            return not in_flight
        if len(in_flight) >= self.window * REORDER_LIMIT:
            return False
        return self._unanswered < self.window

    def _submit(self, recipient: Recipient, data: bytes) -> Future[Outcome]:
        if self.executor is None:
            done: Future[Outcome] = Future()
            done.set_result(self._deliver(recipient, data))
            return done
        future = self.executor.submit(self._deliver, recipient, data)
        self._unanswered += 1
        future.add_done_callback(self._answers.put)
        return future

    def _deliver(self, recipient: Recipient, data: bytes) -> Outcome:
        """Send one message; once the server took it, it is journaled before anything more
        goes over that connection (`on_sent`): a worker killed at any instant can then have
        sent twice only the message each connection was in the middle of (CONTRACT §8). A
        journal that cannot be written is left to the batch's thread, which writes it when it
        judges the message; meanwhile no connection sends another (JournalUnavailable), so a
        Redis that fails over can cost a duplicate only of the message each connection had
        under way."""
        if self._redis_away.is_set():
            raise JournalUnavailable
        sender = self.envelope(recipient.delivery_id) if self.envelope else self.mail_from
        return self.transport.deliver(
            sender, [recipient.email], data, lambda: self._journal(recipient)
        )

    def _journal(self, recipient: Recipient) -> None:
        try:
            self.journal.add(recipient.delivery_id)
        except Exception:
            self._redis_away.set()
            log.warning("journal write failed for delivery %s", recipient.delivery_id)
        else:
            self._journaled.add(recipient.delivery_id)

    def _await_answers(
        self, in_flight: dict[Future[Outcome], Recipient], *, can_fill: bool
    ) -> None:
        """Until the first message in flight is answered, a slot in the window is free for
        another message (`can_fill`), or CHECK_EVERY has passed. A message the server took is
        already in the journal (`_deliver`), though it is judged in its turn. One queue of
        answers, not a wait on every future: that costs a lock per future per look."""
        if self.executor is None:
            return
        head = next(iter(in_flight))
        deadline = time.monotonic() + CHECK_EVERY
        wait: float | None = None  # first look: take what is in, without waiting
        while True:
            try:
                answered = self._answers.get(timeout=wait) if wait else self._answers.get_nowait()
            except Empty:
                answered = None
            if answered is not None:
                self._unanswered -= 1
                wait = None
                continue
            left = deadline - time.monotonic()
            if head.done() or left <= 0 or (can_fill and self._unanswered < self.window):
                return
            wait = left

    def _drain(
        self,
        in_flight: dict[Future[Outcome], Recipient],
        sent: list[int],
        result: BatchResult,
        queue: deque[Recipient] | None = None,
    ) -> list[Recipient]:
        """Wait for the messages in flight: those the server took are recorded as sent; the
        others come back, to be given back with the rest (their answers judge nobody). Those
        not yet handed to a connection are taken back first, untried, to the front of
        `queue`: a warm shutdown or a pause waits only for the conversations under way."""
        unstarted = [r for f, r in in_flight.items() if f.cancel()]
        if queue is not None:
            queue.extendleft(reversed(unstarted))
        unsent: list[Recipient] = []
        for future, recipient in list(in_flight.items()):
            if future.cancelled():
                continue
            try:
                outcome = self._result_renewing(future, in_flight, queue)
            except JournalUnavailable:  # not tried
                unsent.append(recipient)
                continue
            except Exception:
                log.exception("sending to delivery %s failed", recipient.delivery_id)
                unsent.append(recipient)
                continue
            if isinstance(outcome, Sent):
                self._sent(recipient, sent, result)
            else:
                unsent.append(recipient)
        in_flight.clear()
        return unsent

    def _result_renewing(
        self,
        future: Future[Outcome],
        in_flight: dict[Future[Outcome], Recipient],
        queue: deque[Recipient] | None,
    ) -> Outcome:
        """The message's outcome, renewing the lease on the rows in hand every third of it
        while the conversation lasts: a relay that stopped answering holds it up to the SMTP
        timeout, and a row whose lease ran out could be claimed and sent by another worker."""
        every = self.ledger.lease.total_seconds() / 3
        while True:
            try:
                return future.result(timeout=every)
            except TimeoutError:
                mine = [r.delivery_id for r in (*in_flight.values(), *(queue or ()))]
                self.ledger.record_sent([], renew=mine)

    def _sent(self, recipient: Recipient, sent: list[int], result: BatchResult) -> None:
        """Count a message the server took; journal it unless its thread did. A journal that
        cannot be written stops the batch (_stop_without_redis); this row and those in flight
        are recorded in the database at its end, Redis or not."""
        sent.append(recipient.delivery_id)
        result.sent += 1
        if recipient.delivery_id in self._journaled:
            self._journaled.discard(recipient.delivery_id)
            return
        if self._redis_away.is_set():
            return  # the flush at the batch's end records it; no more waits on a dead Redis
        try:
            self.journal.add(recipient.delivery_id)
        except Exception:
            self._redis_away.set()
            log.warning("journal write failed for delivery %s", recipient.delivery_id)

    def _settle(
        self,
        release_id: int,
        recipient: Recipient,
        outcome: Outcome,
        queue: deque[Recipient],
        judge: RefusalJudge[Recipient],
        in_flight: dict[Future[Outcome], Recipient],
        sent: list[int],
        result: BatchResult,
    ) -> bool:
        """What one message's outcome means; True when it ends the batch."""
        if isinstance(outcome, Sent):
            self._sent(recipient, sent, result)
            blamed = judge.delivered()
            if blamed:  # others get through: those refusals were about the readers
                self._fail(blamed, result)
        elif isinstance(outcome, NoSmtpUtf8Error):
            # The relay lacks SMTPUTF8 for this valid address: this delivery fails with the
            # reason, unblamed, and says nothing to the judge about others.
            self._fail_unblamed(recipient, outcome.detail, result)
        elif isinstance(outcome, TransientSendError):
            if not outcome.systemic:
                self._defer(recipient, outcome, result)
                return self._halt_if_due(release_id, queue, judge, in_flight, result)
            tried = [*judge.holding, recipient, *self._drain(in_flight, sent, result, queue)]
            untried = list(queue)
            judge.release_held()
            queue.clear()
            self._outage(release_id, tried, untried, outcome, result)
            return True
        elif isinstance(outcome, PermanentSendError):
            given_back = (recipient.last_error or "").startswith(GIVEN_BACK)
            if judge.refused(
                recipient, recipient.email, outcome.reply, given_back_before=given_back
            ):
                if outcome.reply.about_the_message:  # about us (relay, sender, content)
                    refused = [*judge.holding, *self._drain(in_flight, sent, result, queue)]
                    untried = list(queue)
                    judge.release_held()
                    queue.clear()
                    self._halt(release_id, refused, untried, str(outcome), result)
                    return True
                # A run of the same refusal looks like the relay's answer to everyone.
                # Nothing more goes out; the messages already in flight are judged first, in
                # order: one that gets through shows the refusals were about their readers.
                self._halting = str(outcome)
        if self._halting is not None and isinstance(outcome, Sent):
            self._halting = None  # judge.delivered() has blamed the refusals held
        return self._halt_if_due(release_id, queue, judge, in_flight, result)

    def _halt_if_due(
        self,
        release_id: int,
        queue: deque[Recipient],
        judge: RefusalJudge[Recipient],
        in_flight: dict[Future[Outcome], Recipient],
        result: BatchResult,
    ) -> bool:
        """A pattern of refusals waiting on the messages in flight: once they are all judged
        and none got through, the send pauses (True)."""
        if self._halting is None or in_flight:
            return False
        refused = judge.holding
        untried = list(queue)
        judge.release_held()
        queue.clear()
        self._halt(release_id, refused, untried, self._halting, result)
        return True

    def _interrupted(
        self,
        release_id: int,
        queue: deque[Recipient],
        judge: RefusalJudge[Recipient],
        in_flight: dict[Future[Outcome], Recipient],
        sent: list[int],
        result: BatchResult,
        *,
        check_readers: bool,
    ) -> bool:
        """Pause and cancel take effect between messages; so does a reader's unsubscribe."""
        status = self.ledger.status(release_id)
        if status is not ReleaseStatus.SENDING:
            # Refusals still unjudged go back unjudged: a pause or cancel says nothing of them.
            held, untried = self._take_back(queue, judge, in_flight, sent, result)
            if status is ReleaseStatus.PAUSED:
                # Marked like a pattern's give-back: after the resume, these readers' refusals
                # alone must not read as the relay refusing everyone (refusals.py).
                self.ledger.give_back(
                    held, untried, delay=timedelta(0), tried_error=GIVEN_BACK + "paused"
                )
                result.stopped = "paused"
                result.deferred += len(held) + len(untried)
            else:
                ids = [r.delivery_id for r in (*held, *untried)]
                self.ledger.finish(ids, DeliveryStatus.CANCELLED)
                result.stopped = "cancelled"
            return True
        if not check_readers:
            return False
        confirmed = self.ledger.still_confirmed(r.subscriber_id for r in queue)
        gone = [r for r in queue if r.subscriber_id not in confirmed]
        if gone:
            self.ledger.finish([r.delivery_id for r in gone], DeliveryStatus.SKIPPED)
            result.skipped += len(gone)
            for recipient in gone:
                queue.remove(recipient)
        return False

    def _take_back(
        self,
        queue: deque[Recipient],
        judge: RefusalJudge[Recipient],
        in_flight: dict[Future[Outcome], Recipient],
        sent: list[int],
        result: BatchResult,
    ) -> tuple[list[Recipient], list[Recipient]]:
        """End the batch early: wait for the messages under way (`_drain`), then hand over
        what is left as (held: tried, the refusals unjudged among them; untried), emptying
        the queue and the judge."""
        held = [*judge.holding, *self._drain(in_flight, sent, result, queue)]
        untried = list(queue)
        judge.release_held()
        queue.clear()
        return held, untried

    def _stop_without_redis(
        self,
        release_id: int,
        queue: deque[Recipient],
        judge: RefusalJudge[Recipient],
        in_flight: dict[Future[Outcome], Recipient],
        sent: list[int],
        result: BatchResult,
    ) -> None:
        """The journal or the rate bucket could not be written (Redis away, failing over):
        a message sent now could not be found by the sweep after a crash, so none goes. Those
        under way are recorded as they end (in the database, at the batch's end); the rest go
        back unblamed, due after `retry_seconds`, for the sweep to send once Redis is back."""
        held, untried = self._take_back(queue, judge, in_flight, sent, result)
        given_back = len(held) + len(untried)
        log.warning("release %s: Redis is unavailable; %s rows given back", release_id, given_back)
        self.ledger.give_back(
            held,
            untried,
            delay=timedelta(seconds=self.retry_seconds),
            tried_error=GIVEN_BACK + REDIS_UNAVAILABLE,
        )
        result.deferred += given_back
        result.stopped = REDIS_UNAVAILABLE

    def _defer(self, recipient: Recipient, error: SendError, result: BatchResult) -> None:
        self.ledger.retry_later([(recipient, str(error))], base=self.retry_seconds)
        result.deferred += 1

    def _outage(
        self,
        release_id: int,
        tried: list[Recipient],
        untried: list[Recipient],
        error: SendError,
        result: BatchResult,
    ) -> None:
        """The server or the network is down for everyone: give the batch back, try later."""
        log.warning("release %s: SMTP unavailable (%s); retrying later", release_id, error)
        self.ledger.give_back(
            tried,
            untried,
            delay=timedelta(seconds=self.retry_seconds),
            error=str(error),
            tried_error=GIVEN_BACK + str(error),
        )
        result.deferred += len(tried) + len(untried)
        result.stopped = "smtp unavailable"

    def _halt(
        self,
        release_id: int,
        refused: list[Recipient],
        untried: list[Recipient],
        reason: str,
        result: BatchResult,
    ) -> None:
        """Refused for everyone (auth, sender, relay, the message): pause the release with the
        server's reply, blame no reader. The readers refused so far are marked as given back."""
        log.error(
            "release %s paused: the mail server refuses every message (%s)", release_id, reason
        )
        self.ledger.halt(
            release_id, refused, untried, reason=reason[:300], tried_error=GIVEN_BACK + reason
        )
        result.deferred += len(refused) + len(untried)
        result.stopped = "paused: mail server refuses"

    def _unwritable(
        self,
        release_id: int,
        recipients: list[Recipient],
        error: HeaderError,
        result: BatchResult,
    ) -> None:
        """The release holds text no header may carry (only a row stored before input refused
        it, or written by hand, can): pause it with the reason, blame no reader; it would
        else fail here at every retry and never finish."""
        log.error("release %s paused: its email cannot be written (%s)", release_id, error)
        self.ledger.halt(
            release_id,
            [],
            recipients,
            reason=f"email cannot be written: {error}"[:300],
            untried_error=str(error)[:300],
        )
        result.deferred += len(recipients)
        result.stopped = "paused: email cannot be written"

    def _give_back(
        self,
        held: list[Recipient],
        untried: list[Recipient],
        result: BatchResult,
        reason: str,
    ) -> None:
        """Rows this batch will not send after all go back as owed, due at once, unblamed
        (refusals among them marked given back: they count towards no pattern)."""
        self.ledger.give_back(held, untried, delay=timedelta(0), tried_error=GIVEN_BACK + reason)
        result.deferred += len(held) + len(untried)
        result.stopped = reason

    def _settle_unjudged(
        self, release_id: int, judge: RefusalJudge[Recipient], result: BatchResult
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
        again = [(r, str(reply)) for r, reply in held if r.attempts < UNJUDGED_TRIES]
        if again:
            self.ledger.retry_later(again, base=self.retry_seconds)
            result.deferred += len(again)

    def _fail_unblamed(self, recipient: Recipient, reason: str, result: BatchResult) -> None:
        """This delivery cannot be made through this relay (not the reader's fault, not a
        refusal of everyone): it fails with `reason`; no bounce is scored."""
        self.ledger.finish([recipient.delivery_id], DeliveryStatus.FAILED, error=reason)
        result.failed += 1

    def _fail(
        self,
        refused: list[tuple[Recipient, Reply]],
        result: BatchResult,
        *,
        blame: bool = True,
    ) -> None:
        """Refused for good: the deliveries fail; with `blame`, each reply is a report to the
        bounce policy (ledger.refusal_report): against the reader or the release, as its
        table says."""
        self.ledger.fail(refused, blame=blame)
        result.failed += len(refused)
