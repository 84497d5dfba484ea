"""A send's figures for the send guards' tests (tests/bounces/test_send_guards.py, and the
release.paused webhook's in tests/domain/test_webhook_emits.py): a release sending to many
readers at once, and reports about their copies."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session

from service.domain.bounce_policy import Report, take
from service.domain.send_guards import Limits
from service.models import (
    Delivery,
    DeliveryStatus,
    Release,
    ReleaseStatus,
    ReportDoor,
    Subscriber,
    SubscriberStatus,
)
from tests.rows import subscriber_rows

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
LIMITS = Limits(complaints=0.003, bounces=0.05)


def sending_release(session: Session, *, sent: int, failed: int = 0) -> tuple[int, list[int]]:
    """A release sending to `sent` + `failed` confirmed readers, their copies sent or failed:
    (its id, the readers' ids)."""
    release = Release(slug="vostok", title="Vostok", language="nb", status=ReleaseStatus.SENDING)
    session.add(release)
    session.flush()
    emails = [f"reader{n}@mail.example" for n in range(sent + failed)]
    rows = subscriber_rows(emails, status=SubscriberStatus.CONFIRMED, language="nb", now=NOW)
    ids = list(session.scalars(insert(Subscriber).returning(Subscriber.id), rows))
    session.execute(
        insert(Delivery),
        [
            {
                "release_id": release.id,
                "subscriber_id": sid,
                "language": "nb",
                "status": DeliveryStatus.SENT if n < sent else DeliveryStatus.FAILED,
                "attempts": 1,
            }
            for n, sid in enumerate(ids)
        ],
    )
    return release.id, ids


def report(session: Session, release_id: int, subscriber_id: int, action: str, status=None):
    """A report (`action`: "failed", "complaint", ...) about a reader's copy, as a door takes it."""
    email = session.get(Subscriber, subscriber_id).email  # type: ignore[union-attr]
    delivery = (
        session.query(Delivery).filter_by(release_id=release_id, subscriber_id=subscriber_id).one()
    )
    return take(
        session,
        Report(ReportDoor.GENERIC, action, status, address=email, delivery_id=delivery.id),
        now=NOW,
    )
