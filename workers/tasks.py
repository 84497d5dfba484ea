"""Thin tasks: parse the ids, call one function of service.sending (or background_import) with this
worker's Outbox, and retry what it says to try later. Names match service.task_names."""

from __future__ import annotations

import random

from celery import Task, shared_task

from service import background_import
from service.app_state import session_scope, settings
from service.db import utcnow
from service.models import OwedNotice
from service.redis_clients import app_redis
from service.sending import invitations, jobs, report_jobs, webhook_posts
from service.sending import sweep as sweeping
from service.sending.outbox import TryLater
from service.task_names import TaskName
from workers import shutdown
from workers.outbox import outbox

MAX_NOTICE_RETRIES = 12
MAX_TEST_COPY_RETRIES = 5
IMPORT_BUSY_RETRY_SECONDS = 30  # a crashed run's lock lapses within background_import.LOCK_SECONDS


def backoff_seconds(retries: int) -> float:
    """Exponential backoff with full jitter: up to 5 s, 10 s, 20 s ... capped at 30 minutes,
    and at least 1 s: on RabbitMQ a countdown is held by the broker's delay queues, in whole
    seconds, and Celery refuses one under a second there (kombu's calculate_routing_key)."""
    return random.uniform(1.0, min(1800.0, 5.0 * 2**retries))


def _notice(task: Task, notice: OwedNotice, subscriber_uid: str) -> str:
    try:
        # The task's retries (same task id) keep the notice's Message-ID.
        return jobs.send_notice(outbox(), notice, subscriber_uid, key=task.request.id)
    except TryLater:
        raise task.retry(
            countdown=backoff_seconds(task.request.retries), max_retries=MAX_NOTICE_RETRIES
        ) from None


@shared_task(name=TaskName.SEND_CONFIRMATION.value, bind=True)
def send_confirmation(self: Task, subscriber_uid: str) -> str:
    return _notice(self, OwedNotice.CONFIRMATION, subscriber_uid)


@shared_task(name=TaskName.SEND_ALREADY_SUBSCRIBED.value, bind=True)
def send_already_subscribed(self: Task, subscriber_uid: str) -> str:
    return _notice(self, OwedNotice.ALREADY_SUBSCRIBED, subscriber_uid)


@shared_task(name=TaskName.SEND_WELCOME.value, bind=True)
def send_welcome(self: Task, subscriber_uid: str) -> str:
    return _notice(self, OwedNotice.WELCOME, subscriber_uid)


@shared_task(name=TaskName.START_RELEASE.value)
def start_release(release_id: int) -> int:
    return jobs.start_release(outbox(), release_id)


@shared_task(name=TaskName.SEND_BATCH.value)
def send_batch(release_id: int) -> dict[str, int]:
    return jobs.send_batch(outbox(), release_id)


@shared_task(name=TaskName.SEND_TEST_RELEASE.value, bind=True)
def send_test_release(self: Task, release_id: int, publisher_id: int, language: str) -> str:
    try:
        # Each test its own Message-ID (Gmail folds repeats of one); the task's retries keep it.
        return jobs.send_test_copy(
            outbox(), release_id, publisher_id, language, key=self.request.id
        )
    except TryLater:
        raise self.retry(
            countdown=backoff_seconds(self.request.retries), max_retries=MAX_TEST_COPY_RETRIES
        ) from None


@shared_task(name=TaskName.SWEEP.value)
def sweep() -> dict[str, int]:
    return sweeping.sweep(outbox())


@shared_task(name=TaskName.SEND_INVITATIONS.value, bind=True)
def send_invitations(self: Task) -> dict[str, int]:
    try:
        return invitations.send_invitations(outbox())
    except TryLater:
        raise self.retry(
            countdown=backoff_seconds(self.request.retries), max_retries=MAX_NOTICE_RETRIES
        ) from None


@shared_task(name=TaskName.SEND_HEADER_TEST.value, bind=True)
def send_header_test(self: Task, publisher_id: int) -> str:
    try:
        return jobs.send_header_test(outbox(), publisher_id, key=self.request.id)
    except TryLater:
        raise self.retry(
            countdown=backoff_seconds(self.request.retries), max_retries=MAX_TEST_COPY_RETRIES
        ) from None


@shared_task(name=TaskName.TAKE_REPORT.value)
def take_report(report_id: int) -> dict[str, int]:
    return report_jobs.take_report(outbox(), report_id)


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


@shared_task(name=TaskName.DELIVER_WEBHOOK.value)
def deliver_webhook(row_id: int) -> str:
    """One attempt of an outgoing webhook event; a failed one is tried again at the time the
    outbox set (the sweep also rings it then, should this countdown be lost), and a settled
    one lets the next event of its reader (or release) go."""
    done = webhook_posts.deliver(session_scope, row_id, settings(), now=utcnow)
    if done.retry_at is not None:
        # At least 1 s: RabbitMQ's delayed delivery refuses shorter (service/broker.py).
        countdown = max(1.0, (done.retry_at - utcnow()).total_seconds())
        deliver_webhook.apply_async((row_id,), countdown=countdown)
    if done.next_in_line is not None:
        deliver_webhook.delay(done.next_in_line)
    return done.status.value if done.status else "nothing due"
