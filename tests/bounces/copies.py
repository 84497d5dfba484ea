"""A confirmed reader and their delivered copy of a sending release: what every bounce test
reports on."""

from __future__ import annotations

import secrets
from datetime import datetime

from flask import Flask
from sqlalchemy.orm import Session

from service.app_state import session_scope
from service.db import utcnow
from service.domain.release_messages import delivery_message_id
from service.models import (
    Delivery,
    DeliveryStatus,
    Release,
    ReleaseStatus,
    Subscriber,
    SubscriberStatus,
)
from service.sending.envelope import EnvelopeSenders
from tests.bounces import formats
from tests.rows import subscriber_rows

READER = "gagarin@mail.example"


def add_reader(session: Session, email: str = READER, *, now: datetime) -> Subscriber:
    [values] = subscriber_rows([email], status=SubscriberStatus.CONFIRMED, language="nb", now=now)
    subscriber = Subscriber(**values)
    session.add(subscriber)
    session.flush()
    return subscriber


def add_delivery(session: Session, subscriber: Subscriber, *, now: datetime) -> Delivery:
    """A release being sent, and its copy to `subscriber`, taken by the relay."""
    release = Release(
        slug=f"vostok-{secrets.token_hex(3)}",
        title="60 år siden Jurij Gagarin erobret verdensrommet",
        language="nb",
        status=ReleaseStatus.SENDING,
        published_at=now,
    )
    session.add(release)
    session.flush()
    delivery = Delivery(
        release_id=release.id,
        subscriber_id=subscriber.id,
        language="nb",
        status=DeliveryStatus.SENT,
        attempts=1,
        sent_at=now,
    )
    session.add(delivery)
    session.flush()
    return delivery


def original_of(
    delivery: Delivery, subscriber: Subscriber, envelope_sender: str
) -> formats.Original:
    """The copy as it left: its envelope sender, and the Message-ID that names its release."""
    return formats.Original(
        recipient=subscriber.email,
        envelope_sender=envelope_sender,
        message_id=delivery_message_id(delivery.release_id, subscriber.uid, "press.example"),
    )


def delivered(app: Flask, email: str = READER) -> tuple[formats.Original, int]:
    """A reader and their copy in the app's database, with the envelope sender the app's
    settings give it (VERP with BOUNCE_ADDRESS); the copy and its release's id."""
    now = utcnow()
    with app.app_context(), session_scope() as session:
        reader = add_reader(session, email, now=now)
        delivery = add_delivery(session, reader, now=now)
        envelope = EnvelopeSenders.from_settings(app.extensions["pressroom.settings"])
        return original_of(
            delivery, reader, envelope.for_delivery(delivery.id)
        ), delivery.release_id
