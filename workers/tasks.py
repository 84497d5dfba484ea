"""Thin tasks: load, call the domain, send. Names are explicit and match service.dispatch."""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from celery import Task, shared_task
from celery.signals import worker_process_shutdown
from flask import current_app
from sqlalchemy import select

from service import background_import
from service.app_state import session_scope
from service.db import utcnow
from service.dispatch import TaskName
from service.domain import delivery, invitations, mail_headers, notices, owed_notices, releases
from service.domain.emails import OutgoingMail
from service.domain.mail_headers import HeaderError
from service.domain.release_messages import MailSite, ReleaseMessage
from service.models import (
    OwedNotice,
    Publisher,
    Release,
    ReleaseStatus,
    Subscriber,
    SubscriberStatus,
)
from service.redis_clients import app_redis
from workers import shutdown
from workers.ratelimit import SendRateLimiter, Unlimited
from workers.sending import BATCH_SIZE, SHUTTING_DOWN, BatchSender, journal_key
from workers.smtp import PermanentSendError, SmtpMailer, SmtpSettings, TransientSendError

log = logging.getLogger(__name__)

MAX_NOTICE_RETRIES = 12
INVITATIONS_LOCK = "pressroom:invitations:lock"  # held by the one run sending invitations
INVITATIONS_LOCK_SECONDS = 120  # renewed at every message; a crashed run's lapses after this
IMPORT_BUSY_RETRY_SECONDS = 30  # a crashed run's lock lapses within background_import.LOCK_SECONDS
REPLAN_AFTER = timedelta(minutes=1)


def notice_context() -> notices.NoticeContext:
    settings = current_app.extensions["pressroom.settings"]
    return notices.NoticeContext(
        renderer=current_app.extensions["pressroom.emails"],
        signer=current_app.extensions["pressroom.signer"],
        site=notices.SiteIdentity(
            base_url=settings.public_base_url,
            mail_from=settings.mail_from,
            site_name=settings.site_name,
            list_id=settings.list_id,
        ),
    )


def mailer() -> SmtpMailer:
    return SmtpMailer(SmtpSettings.from_url(current_app.extensions["pressroom.settings"].smtp_url))


# Per thread: with --pool=threads (or gevent) tasks run side by side in one process, and an SMTP
# connection, or a message cache being refilled, cannot be shared between two of them.
_per_thread = threading.local()


def kept_mailer() -> SmtpMailer:
    """This worker process's SMTP connection, kept from one batch to the next: a send to
    100,000 readers is some hundreds of batches, and each new connection costs a TCP (and TLS)
    handshake, EHLO and AUTH."""
    wanted = SmtpSettings.from_url(current_app.extensions["pressroom.settings"].smtp_url)
    kept: SmtpMailer | None = getattr(_per_thread, "mailer", None)
    if kept is None or kept.settings != wanted:
        if kept is not None:
            kept.close()
        kept = _per_thread.mailer = SmtpMailer(wanted)
    return kept


@worker_process_shutdown.connect
def _close_kept_mailer(**_: object) -> None:
    kept: SmtpMailer | None = getattr(_per_thread, "mailer", None)
    if kept is not None:
        kept.close()


def backoff_seconds(retries: int) -> float:
    """Exponential backoff with full jitter: 5 s, 10 s, 20 s ... capped at 30 minutes."""
    return random.uniform(0, min(1800.0, 5.0 * 2**retries))


def _send_notice(
    task: Task,
    subscriber_uid: str,
    wanted: Callable[[Subscriber], bool],
    build: Callable[..., OutgoingMail],
) -> str:
    now: datetime = utcnow()
    with session_scope() as session:
        subscriber = session.scalar(select(Subscriber).where(Subscriber.uid == subscriber_uid))
        if subscriber is None or not wanted(subscriber):
            return "skipped"
        try:
            context = notice_context()
            # A new ID for each notice; the task's retries (same task id) keep it.
            message_id = mail_headers.new_msg_id(
                mail_headers.parse_mailbox(context.site.mail_from).domain, key=task.request.id
            )
            message = build(context, subscriber, now=now, message_id=message_id)
        except HeaderError as error:
            # Only a row written by other means than signup can hold such an address.
            log.warning("notice to subscriber %s not written: %s", subscriber_uid, error)
            return "refused"
    try:
        with mailer() as transport:
            transport.send(message)
    except (TransientSendError, PermanentSendError) as error:
        if isinstance(error, PermanentSendError) and not error.systemic:
            log.warning("notice to subscriber %s refused: %s", subscriber_uid, error)
            return "refused"
        # A 4xx, or a refusal of all mail (auth, sender, TLS): ours to fix, so keep trying.
        log.log(
            logging.ERROR if error.systemic else logging.WARNING,
            "notice to subscriber %s deferred: %s",
            subscriber_uid,
            error,
        )
        raise task.retry(
            countdown=backoff_seconds(task.request.retries), max_retries=MAX_NOTICE_RETRIES
        ) from None
    return "sent"


@shared_task(name=TaskName.SEND_CONFIRMATION.value, bind=True)
def send_confirmation(self: Task, subscriber_uid: str) -> str:
    return _send_notice(
        self,
        subscriber_uid,
        lambda s: s.status is not SubscriberStatus.CONFIRMED,
        notices.confirmation_email,
    )


@shared_task(name=TaskName.SEND_ALREADY_SUBSCRIBED.value, bind=True)
def send_already_subscribed(self: Task, subscriber_uid: str) -> str:
    return _send_notice(
        self,
        subscriber_uid,
        lambda s: s.status is SubscriberStatus.CONFIRMED,
        notices.already_subscribed_email,
    )


@shared_task(name=TaskName.SEND_WELCOME.value, bind=True)
def send_welcome(self: Task, subscriber_uid: str) -> str:
    return _send_notice(
        self,
        subscriber_uid,
        lambda s: s.status is SubscriberStatus.CONFIRMED,
        notices.welcome_email,
    )


# --- Releases ------------------------------------------------------------------------------

SEND_CHAINS = 4  # send_batch chains per release: each claims a batch and queues the next


def mail_site() -> MailSite:
    return MailSite.from_settings(
        current_app.extensions["pressroom.settings"], current_app.extensions.get("pressroom.dkim")
    )


def release_message(release: Release, language: str) -> ReleaseMessage:
    """Composed once per release, language and edit, then reused for every batch."""
    key = (release.id, language, release.updated_at)
    messages: dict[tuple[int, str, datetime], ReleaseMessage] | None = getattr(
        _per_thread, "messages", None
    )
    if messages is None:
        messages = _per_thread.messages = {}
    if key not in messages:
        if len(messages) > 16:
            messages.clear()
        messages[key] = new_release_message(release, language)
    return messages[key]


def new_release_message(release: Release, language: str, *, test: bool = False) -> ReleaseMessage:
    return ReleaseMessage(
        current_app.extensions["pressroom.emails"],
        current_app.extensions["pressroom.signer"],
        mail_site(),
        release,
        language,
        now=utcnow(),
        test=test,
    )


def start_sending(release_id: int, chains: int = SEND_CHAINS) -> None:
    for _ in range(chains):
        send_batch.delay(release_id)


@shared_task(name=TaskName.START_RELEASE.value)
def start_release(release_id: int) -> int:
    """Plan the recipients chunk by chunk, starting the senders as soon as there is work."""
    planned = 0
    started = False
    while True:
        if shutdown.requested():  # resumes at its checkpoint in another worker
            start_release.delay(release_id)
            return planned
        with session_scope() as session:
            release = session.get(Release, release_id)
            if release is None or release.status not in (
                ReleaseStatus.SENDING,
                ReleaseStatus.PAUSED,
            ):
                return planned
            if release.planned_at is not None:
                delivery.finish_if_done(session, release, now=utcnow())
                break
            planned += delivery.plan_chunk(session, release, now=utcnow())
            sending = release.status is ReleaseStatus.SENDING
        if planned and sending and not started:
            start_sending(release_id)
            started = True
    log.info("release %s: planned %s deliveries", release_id, planned)
    return planned


@shared_task(name=TaskName.SEND_BATCH.value, bind=True)
def send_batch(self: Task, release_id: int) -> dict[str, object]:
    settings = current_app.extensions["pressroom.settings"]
    # Unique to this run (a redelivered task keeps its id, a container its pid): names the
    # lease and the send journal.
    owner = f"{socket.gethostname()[:20]}:{os.getpid()}:{uuid.uuid4().hex}"
    result = BatchSender(
        owner=owner,
        redis_client=app_redis(),
        mailer=kept_mailer(),
        make_message=release_message,
        mail_from=settings.mail_from,
        send_rate=settings.send_rate,
        lease=timedelta(seconds=settings.send_lease_seconds),
        retry_seconds=settings.retry_seconds,
        stop_requested=shutdown.requested,
    ).run(release_id)
    if result.more or result.stopped == SHUTTING_DOWN:
        send_batch.delay(release_id)  # another worker takes up the rows given back
    else:  # the last chain to find nothing left to do closes the send
        with session_scope() as session:
            release = session.get(Release, release_id)
            if release is not None:
                delivery.finish_if_done(session, release, now=utcnow())
    return {"sent": result.sent, "failed": result.failed, "deferred": result.deferred}


@shared_task(name=TaskName.SEND_TEST_RELEASE.value, bind=True)
def send_test_release(self: Task, release_id: int, publisher_id: int, language: str) -> str:
    """A copy for press staff before they publish: marked as a test, never a delivery row."""
    with session_scope() as session:
        release = session.get(Release, release_id)
        publisher = session.get(Publisher, publisher_id)
        if release is None or publisher is None or not publisher.is_active:
            return "skipped"
        try:
            message = new_release_message(release, language, test=True).for_recipient(
                publisher.email,
                f"test-{publisher.id}",
                # Each test its own ID (Gmail folds repeats of one); the task's retries keep it.
                message_id=mail_headers.new_msg_id(mail_site().domain, key=self.request.id),
            )
        except HeaderError as error:
            log.warning("test copy of release %s not written: %s", release_id, error)
            return "refused"
        address = publisher.email
    settings = current_app.extensions["pressroom.settings"]
    try:
        with mailer() as transport:
            transport.send_raw(settings.mail_from, [address], message)
    except TransientSendError as error:
        log.warning("test copy of release %s deferred: %s", release_id, error)
        raise self.retry(countdown=backoff_seconds(self.request.retries), max_retries=5) from None
    except PermanentSendError as error:
        log.warning("test copy of release %s refused: %s", release_id, error)
        return "refused"
    return "sent"


@shared_task(name=TaskName.SWEEP.value)
def sweep() -> dict[str, int]:
    """Every half minute: recover vanished workers' rows, restart lost or stalled sends, start
    due schedules, and mark finished sends sent. Makes a Redis wipe a delay, never a loss."""
    now = utcnow()
    client = app_redis()
    report = {
        "reclaimed": 0,
        "cancelled": 0,
        "restarted": 0,
        "scheduled": 0,
        "finished": 0,
        "notices": 0,
    }
    with session_scope() as session:
        expired = delivery.expired_leases(session, now=now)
        by_owner: dict[str, list[int]] = {}
        for lease in expired:
            by_owner.setdefault(lease.owner, []).append(lease.delivery_id)
        journaled: set[int] = set()
        for owner, ids in by_owner.items():
            flags = client.smismember(journal_key(owner), ids)
            journaled.update(d for d, flag in zip(ids, flags, strict=True) if flag)
        delivery.reclaim(session, journaled, [lease.delivery_id for lease in expired], now=now)
        report["reclaimed"] = len(expired)
        report["cancelled"] = delivery.cancel_leftovers(session)
    # Committed: the database now holds what the journals knew of these rows. Only these:
    # a sweep may see part of a batch, and the rest still needs its journal.
    for owner, ids in by_owner.items():
        client.srem(journal_key(owner), *ids)
    with session_scope() as session:
        due = delivery.due_scheduled(session, now=now)
    for release_id in due:
        with session_scope() as session:
            _, must_send = releases.publish(session, release_id, now=now)
        if must_send:
            start_release.delay(release_id)
            report["scheduled"] += 1
    with session_scope() as session:
        for release in delivery.releases_in(session, ReleaseStatus.SENDING):
            if release.planned_at is None:
                if release.send_started_at and now - release.send_started_at > REPLAN_AFTER:
                    start_release.delay(release.id)  # resumes at its checkpoint
                continue
            if delivery.finish_if_done(session, release, now=now):
                report["finished"] += 1
            elif not delivery.in_progress(session, release.id, now=now):
                waiting = delivery.due_count(session, release.id, now=now)
                if waiting:
                    start_sending(release.id, min(SEND_CHAINS, -(-waiting // BATCH_SIZE)))
                    report["restarted"] += 1
    report["notices"] = ring_owed_notices(now)
    report["invitations"] = ring_waiting_invitations(now)
    return report


def ring_owed_notices(now: datetime) -> int:
    """Notices recorded as owed whose ring after the commit failed (or never came): queue
    them now, and settle each record once the queue has it."""
    tasks = {
        OwedNotice.CONFIRMATION: send_confirmation,
        OwedNotice.ALREADY_SUBSCRIBED: send_already_subscribed,
        OwedNotice.WELCOME: send_welcome,
    }
    with session_scope() as session:
        owed = owed_notices.unrung(session, now=now)
    for notice in owed:
        tasks[notice.notice].delay(notice.subscriber_uid)
        with session_scope() as session:
            owed_notices.settle(session, notice)
    return len(owed)


def ring_waiting_invitations(now: datetime) -> int:
    """Invitations of a round older than RING_AFTER still waiting, and no run sending them
    (its ring failed, or it stopped): start one. 1 when it did."""
    if app_redis().exists(INVITATIONS_LOCK):
        return 0
    with session_scope() as session:
        waiting = invitations.waiting_since(session, now - owed_notices.RING_AFTER)
    if waiting:
        send_invitations.delay()
    return int(waiting)


# --- Confirmation invitations ---------------------------------------------------------------


@shared_task(name=TaskName.SEND_INVITATIONS.value, bind=True)
def send_invitations(self: Task) -> dict[str, int]:
    """Send every invitation waiting (domain/invitations), one message per SEND_RATE token
    from the bucket that release sends take theirs from. One run at a time: a second one
    finds the lock held and leaves the work to the first, which goes on until none is left.

    A 4xx or a refusal of all mail stops the run and retries it later; the rows keep waiting.
    """
    client = app_redis()
    owner = uuid.uuid4().hex
    if not client.set(INVITATIONS_LOCK, owner, nx=True, ex=INVITATIONS_LOCK_SECONDS):
        return {"busy": 1}
    send_rate = current_app.extensions["pressroom.settings"].send_rate
    limiter = SendRateLimiter(client, send_rate) if send_rate else Unlimited()
    counts = {"sent": 0, "refused": 0, "skipped": 0}
    handled: set[str] = set()  # never twice in one run, whatever the rows say
    try:
        # Passes over the waiting rows by id, until one finds none new: a round started
        # meanwhile may have rows behind this pass (its ring found the lock held).
        while True:
            fresh, last_id = 0, 0
            while batch := _due_invitations(last_id):
                for subscriber_id, uid in batch:
                    last_id = subscriber_id
                    if uid in handled:
                        continue
                    if shutdown.requested() or not limiter.acquire(shutdown.requested):
                        send_invitations.delay()  # a warm shutdown: another worker goes on
                        return counts
                    client.expire(INVITATIONS_LOCK, INVITATIONS_LOCK_SECONDS)
                    handled.add(uid)
                    fresh += 1
                    counts[_send_invitation(uid)] += 1
            if not fresh:
                break
    except (TransientSendError, PermanentSendError) as error:
        log.log(
            logging.ERROR if error.systemic else logging.WARNING,
            "invitations deferred: %s",
            error,
        )
        raise self.retry(
            countdown=backoff_seconds(self.request.retries), max_retries=MAX_NOTICE_RETRIES
        ) from None
    finally:
        if client.get(INVITATIONS_LOCK) == owner.encode():
            client.delete(INVITATIONS_LOCK)
    log.info("invitations: %s", counts)
    return counts


def _due_invitations(after_id: int) -> list[tuple[int, str]]:
    with session_scope() as session:
        return invitations.due(session, after_id=after_id)


def _send_invitation(subscriber_uid: str) -> str:
    """One invitation: "sent", "refused" (this address, for good) or "skipped" (no longer
    wanted). Raises TransientSendError, or PermanentSendError when the server refuses all mail."""
    with session_scope() as session:
        subscriber = session.scalar(select(Subscriber).where(Subscriber.uid == subscriber_uid))
        if subscriber is None or not invitations.still_wanted(session, subscriber):
            return "skipped"
        try:
            message = notices.confirmation_email(notice_context(), subscriber, now=utcnow())
        except HeaderError as error:
            log.warning("invitation to subscriber %s not written: %s", subscriber_uid, error)
            invitations.mark_sent(subscriber, now=utcnow())
            return "refused"
    outcome = "sent"
    try:
        kept_mailer().send(message)
    except PermanentSendError as error:
        if error.systemic:
            raise
        log.warning("invitation to subscriber %s refused: %s", subscriber_uid, error)
        outcome = "refused"
    with session_scope() as session:
        subscriber = session.scalar(select(Subscriber).where(Subscriber.uid == subscriber_uid))
        if subscriber is not None:
            invitations.mark_sent(subscriber, now=utcnow())
    return outcome


# --- Imports -------------------------------------------------------------------------------


@shared_task(name=TaskName.IMPORT_SUBSCRIBERS.value, bind=True)
def import_subscribers(self: Task, job_id: str) -> str:
    """A CSV file the desk took in, imported a chunk per transaction; run again after a crash,
    it resumes at its checkpoint, and once ended it changes nothing."""
    try:
        status = background_import.run(app_redis(), job_id, stop=shutdown.requested)
    except background_import.JobBusy:
        raise self.retry(
            countdown=IMPORT_BUSY_RETRY_SECONDS,
            max_retries=2 * background_import.LOCK_SECONDS // IMPORT_BUSY_RETRY_SECONDS,
        ) from None
    if status == background_import.INTERRUPTED:  # a warm shutdown: another worker resumes it
        import_subscribers.delay(job_id)
    return status
