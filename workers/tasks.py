"""Thin tasks: load, call the domain, send. Names are explicit and match service.dispatch."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage

from celery import Task, shared_task
from flask import current_app
from sqlalchemy import select

from service.db import session_scope, utcnow
from service.dispatch import TaskName
from service.domain import notices
from service.models import Subscriber, SubscriberStatus
from workers.smtp import PermanentSendError, SmtpMailer, SmtpSettings, TransientSendError

log = logging.getLogger(__name__)

MAX_NOTICE_RETRIES = 12


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


def backoff_seconds(retries: int) -> float:
    """Exponential backoff with full jitter: 5 s, 10 s, 20 s ... capped at 30 minutes."""
    return random.uniform(0, min(1800.0, 5.0 * 2**retries))


def _send_notice(
    task: Task,
    subscriber_uid: str,
    wanted: Callable[[Subscriber], bool],
    build: Callable[..., EmailMessage],
) -> str:
    now: datetime = utcnow()
    with session_scope() as session:
        subscriber = session.scalar(select(Subscriber).where(Subscriber.uid == subscriber_uid))
        if subscriber is None or not wanted(subscriber):
            return "skipped"
        message = build(notice_context(), subscriber, now=now)
    try:
        with mailer() as transport:
            transport.send(message)
    except TransientSendError as error:
        log.warning("notice to subscriber %s deferred: %s", subscriber_uid, error)
        raise task.retry(
            countdown=backoff_seconds(task.request.retries), max_retries=MAX_NOTICE_RETRIES
        ) from None
    except PermanentSendError as error:
        log.warning("notice to subscriber %s refused: %s", subscriber_uid, error)
        return "refused"
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
