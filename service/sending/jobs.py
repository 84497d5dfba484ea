"""One function per worker task of a send, given the Outbox: the task parses its ids and calls
one of these (workers/tasks.py); every rule of the work is here or below."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import timedelta

from sqlalchemy import select

from service import logs
from service.domain import notices, owed_notices, send_guards
from service.domain.header_test import header_test_email
from service.domain.mail_headers import HeaderError, new_msg_id
from service.models import OwedNotice, Publisher, Release, Subscriber
from service.sending import control, meters
from service.sending.batch import SHUTTING_DOWN, BatchSender
from service.sending.journal import SendJournal
from service.sending.ledger import SqlLedger
from service.sending.outbox import Outbox, TryLater
from service.sending.rate import SendRateLimiter, Unlimited
from service.sending.transport import Outcome, PermanentSendError, Sent, TransientSendError

log = logging.getLogger(__name__)

NOTICES = {
    OwedNotice.CONFIRMATION: notices.confirmation_email,
    OwedNotice.ALREADY_SUBSCRIBED: notices.already_subscribed_email,
    OwedNotice.WELCOME: notices.welcome_email,
}


def start_release(box: Outbox, release_id: int) -> int:
    """Plan the recipients chunk by chunk, starting the senders as soon as there is work."""
    logs.bind(release_id=release_id)
    return control.start_release(
        box.open_session,
        release_id,
        ring=box.ring,
        stop_requested=box.stop_requested,
        now=box.now,
        chains=box.settings.send_chains,
    )


def limiter(box: Outbox) -> SendRateLimiter | Unlimited:
    """SEND_RATE's bucket, shared by release sends and invitations on every machine."""
    rate = box.settings.send_rate
    return SendRateLimiter(box.redis, rate) if rate else Unlimited()


def send_batch(box: Outbox, release_id: int) -> dict[str, int]:
    """One batch of a release, then what it owes: the next link of its chain, or the end."""
    logs.bind(release_id=release_id)
    settings = box.settings
    # Unique to this run (a redelivered task keeps its id, a container its pid): names the
    # lease and the send journal.
    owner = f"{socket.gethostname()[:20]}:{os.getpid()}:{uuid.uuid4().hex}"
    result = BatchSender(
        ledger=SqlLedger(
            box.open_session,
            owner=owner,
            lease=timedelta(seconds=settings.send_lease_seconds),
            limits=send_guards.Limits.from_settings(settings),
        ),
        transport=box.transport,
        journal=SendJournal(box.redis, owner),
        limiter=limiter(box),
        messages=box.messages,
        digests=box.composer.digest_messages,
        mail_from=settings.mail_from,
        envelope=box.envelope.for_delivery,
        send_rate=settings.send_rate,
        retry_seconds=settings.retry_seconds,
        stop_requested=box.stop_requested,
        executor=box.executor,
        window=box.window,
    ).run(release_id)
    meters.count_batch(
        result.sent, result.failed, result.deferred, result.skipped, claimed=result.claimed > 0
    )
    more = result.more or result.stopped == SHUTTING_DOWN
    control.after_batch(box.open_session, release_id, more=more, ring=box.ring, now=box.now())
    return {"sent": result.sent, "failed": result.failed, "deferred": result.deferred}


def send_notice(box: Outbox, notice: OwedNotice, subscriber_uid: str, *, key: str | None) -> str:
    """A reader's notice, if still owed (owed_notices.still_owed): "sent", "skipped" or
    "refused" (this address, for good); TryLater for a 4xx or a refusal of every message.
    `key`: the same for every retry of one notice, which keeps its Message-ID."""
    logs.bind(subscriber_uid=subscriber_uid)
    try:
        outcome = _send_notice(box, notice, subscriber_uid, key=key)
    except TryLater:
        meters.NOTICES.labels(notice.value, "deferred").inc()
        raise
    meters.NOTICES.labels(notice.value, outcome).inc()
    return outcome


def _send_notice(box: Outbox, notice: OwedNotice, subscriber_uid: str, *, key: str | None) -> str:
    now = box.now()
    with box.open_session() as session:
        subscriber = session.scalar(select(Subscriber).where(Subscriber.uid == subscriber_uid))
        if subscriber is None or not owed_notices.still_owed(notice, subscriber):
            return "skipped"
        try:
            message = NOTICES[notice](
                box.composer.notices,
                subscriber,
                now=now,
                message_id=new_msg_id(box.composer.site.domain, key=key),
            )
            envelope_sender = box.envelope.for_subscriber(subscriber.id)
        except HeaderError as error:
            # Only a row written by other means than signup can hold such an address.
            log.warning("notice to subscriber %s not written: %s", subscriber_uid, error)
            return "refused"
    outcome = box.transport.deliver(envelope_sender, [message.recipient], message.data)
    return _settled(outcome, f"notice to subscriber {subscriber_uid}")


def _settled(outcome: Outcome, what: str) -> str:
    if isinstance(outcome, Sent):
        return "sent"
    if isinstance(outcome, PermanentSendError) and not outcome.systemic:
        log.warning("%s refused: %s", what, outcome)
        return "refused"
    # A 4xx, or a refusal of all mail (auth, sender, TLS): ours to fix, so keep trying.
    log.log(
        logging.ERROR if outcome.systemic else logging.WARNING, "%s deferred: %s", what, outcome
    )
    raise TryLater(outcome)


def send_test_copy(
    box: Outbox, release_id: int, publisher_id: int, language: str, *, key: str | None
) -> str:
    """A copy for press staff before they publish: marked as a test, never a delivery row.
    "sent", "skipped" (no such release or active publisher) or "refused"; TryLater for a 4xx
    or a connection that failed."""
    with box.open_session() as session:
        release = session.get(Release, release_id)
        publisher = session.get(Publisher, publisher_id)
        if release is None or publisher is None or not publisher.is_active:
            return "skipped"
        try:
            data = box.composer.test_copy(
                release, language, publisher.email, publisher.id, now=box.now(), key=key
            )
        except HeaderError as error:
            log.warning("test copy of release %s not written: %s", release_id, error)
            return "refused"
        address = publisher.email
    outcome = box.transport.deliver(box.envelope.plain, [address], data)
    if isinstance(outcome, Sent):
        return "sent"
    if isinstance(outcome, TransientSendError):
        log.warning("test copy of release %s deferred: %s", release_id, outcome)
        raise TryLater(outcome)
    log.warning("test copy of release %s refused: %s", release_id, outcome)
    return "refused"


def send_header_test(box: Outbox, publisher_id: int, *, key: str | None) -> str:
    """The deliverability page's test message to a publisher (domain.header_test): "sent",
    "skipped" (no such active publisher) or "refused"; TryLater for a 4xx or a connection
    that failed. `key`: the same for each retry, which keeps its Message-ID."""
    with box.open_session() as session:
        publisher = session.get(Publisher, publisher_id)
        if publisher is None or not publisher.is_active:
            return "skipped"
        address = publisher.email
    site = box.composer.site
    try:
        mail = header_test_email(
            site,
            address,
            box.envelope.plain,
            now=box.now(),
            message_id=new_msg_id(site.domain, key=key),
        )
    except HeaderError as error:
        log.warning("header test to publisher %s not written: %s", publisher_id, error)
        return "refused"
    outcome = box.transport.deliver(box.envelope.plain, [address], mail.data)
    if isinstance(outcome, Sent):
        return "sent"
    if isinstance(outcome, TransientSendError):
        raise TryLater(outcome)
    log.warning("header test to publisher %s refused: %s", publisher_id, outcome)
    return "refused"
