"""Building blocks for browser tests: a site with history to draw."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.app_state import get_database
from service.db import utcnow
from service.domain import bounce_policy, releases, subscriptions
from service.domain.bounce_policy import Report
from service.domain.tokens import Purpose, TokenSigner
from service.models import (
    ConsentSource,
    Delivery,
    DeliveryStatus,
    Release,
    ReleaseStatus,
    ReportDoor,
)
from service.sending import ledger

TITLES = [
    "Nye nattbusslinjer i hele fylket fra 1. desember",
    "Årsrapporten for 2025: flere reisende og færre forsinkelser",
    "Bibliotekene holder åpent i romjulen",
]


def seed_history(app: Flask) -> dict[str, int]:
    """A month of readers joining and leaving, and three releases, through the domain."""
    signer: TokenSigner = app.extensions["pressroom.signer"]
    now = utcnow()
    emails: list[str] = []
    with app.app_context(), get_database().session_scope() as session:
        for day in range(28, -1, -1):
            at = now - timedelta(days=day, hours=1)
            for n in range(1 + (day * 7) % 5):
                email = f"reader{day}-{n}@mail.example"
                subscriptions.subscribe(
                    session,
                    subscriptions.Signup(
                        email=email,
                        language="nb",
                        topics=[],
                        source=ConsentSource.FORM,
                        consent_text_version="v1",
                    ),
                    now=at,
                )
                row = subscriptions.find_by_email(session, email)
                assert row is not None
                subscriptions.confirm(
                    session, signer, subscriptions.confirm_token(signer, row), now=at
                )
                emails.append(email)
            if day % 6 == 3:
                gone = subscriptions.find_by_email(session, emails[len(emails) // 3])
                assert gone is not None
                subscriptions.unsubscribe(
                    session, signer, subscriptions.unsubscribe_token(signer, gone), now=at
                )
        for n, title in enumerate(TITLES):
            at = now - timedelta(days=20 - 8 * n)
            release_id = sent_release(session, title, at, failed=n + 1)
            for email in emails[n * 5 : n * 5 + n + 1]:
                row = subscriptions.find_by_email(session, email)
                assert row is not None
                # The link of that release's email names it.
                token = signer.dumps(Purpose.UNSUBSCRIBE, {"u": row.uid, "r": release_id})
                subscriptions.unsubscribe(session, signer, token, now=at + timedelta(hours=2))
    return {"releases": len(TITLES)}


def sent_release(session: Session, title: str, at: datetime, *, failed: int) -> int:
    draft = releases.parse_release(
        {"title": title, "summary": "Sammendrag", "body": "Tekst", "language": "nb"}, now=at
    )
    release = releases.create_release(session, draft, publisher_id=None, now=at)
    releases.publish(session, release.id, now=at)
    while release.planned_at is None:
        ledger.plan_chunk(session, release, now=at)
    session.execute(
        update(Delivery)
        .where(Delivery.release_id == release.id)
        .values(status=DeliveryStatus.SENT, sent_at=at)
        .execution_options(synchronize_session=False)
    )
    failing = list(
        session.scalars(
            select(Delivery.id)
            .where(Delivery.release_id == release.id)
            .order_by(Delivery.id.desc())
            .limit(failed)
        )
    )
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_(failing))
        .values(status=DeliveryStatus.FAILED)
        .execution_options(synchronize_session=False)
    )
    for delivery_id in failing[1:]:  # refused as addresses that do not exist; one otherwise
        report = Report(ReportDoor.RELAY, "failed", "5.1.1", delivery_id=delivery_id)
        bounce_policy.take(session, report, now=at)
    if len(failing) > 2:  # and a reader who marked it as spam
        delivered = session.scalars(
            select(Delivery.id).where(
                Delivery.release_id == release.id, Delivery.status == DeliveryStatus.SENT
            )
        ).first()
        complaint = Report(ReportDoor.GENERIC, "complaint", delivery_id=delivered)
        bounce_policy.take(session, complaint, now=at)
    session.execute(
        update(Release)
        .where(Release.id == release.id)
        .values(status=ReleaseStatus.SENT, send_finished_at=at)
        .execution_options(synchronize_session=False)
    )
    return release.id
