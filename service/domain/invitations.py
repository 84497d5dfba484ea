"""Confirmation invitations: the signup's confirmation email, sent to imported readers who
are still waiting for confirmation (what listmonk calls an opt-in campaign).

An import without --confirmed leaves readers pending and sends them nothing. A round of
invitations (the desk's button, `flask subscribers invite`) marks every reader it invites in
one transaction: `invited_at` is the round's time. The worker then sends each of them the
confirmation email in their language, under the same SEND_RATE as releases, and records
`invitation_sent_at`; until then the row is the durable record of the invitation it is owed
(the sweep rings again for one left waiting). Who is invited:

- pending readers who came by import (form and API signups got their confirmation email);
- never one whose address is suppressed (erased, bounced, complained) or who unsubscribed or
  bounced (those are not pending);
- never twice within INVITE_INTERVAL, which is CONFIRM_TTL: the link of the last invitation
  still works until then.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from service.domain.tokens import CONFIRM_TTL
from service.models import ConsentSource, Subscriber, SubscriberStatus, Suppression, address_hash

INVITE_INTERVAL = CONFIRM_TTL
PAGE_SIZE = 1000


@dataclass(frozen=True)
class InvitationSummary:
    """What the desk shows: who can be invited now, and the last round."""

    invitable: int  # readers a round would invite now
    last_at: datetime | None  # the last round's time
    last_count: int  # readers invited in it (erased ones no longer counted)
    waiting: int  # invitations of any round not sent yet

    @property
    def again_at(self) -> datetime | None:
        """When the readers of the last round can be invited again."""
        return self.last_at + INVITE_INTERVAL if self.last_at else None


def _invitable(now: datetime) -> ColumnElement[bool]:
    return and_(
        Subscriber.status == SubscriberStatus.PENDING,
        Subscriber.consent_source == ConsentSource.IMPORT,
        or_(Subscriber.invited_at.is_(None), Subscriber.invited_at <= now - INVITE_INTERVAL),
    )


def _unsuppressed_pages(session: Session, now: datetime) -> Iterator[list[int]]:
    """The ids of the readers a round would invite now, a keyset page at a time. Suppression
    keeps only a hash of each address, so the check runs here, one lookup per page."""
    last_id = 0
    while True:
        page = session.execute(
            select(Subscriber.id, Subscriber.email)
            .where(_invitable(now), Subscriber.id > last_id)
            .order_by(Subscriber.id)
            .limit(PAGE_SIZE)
        ).all()
        if not page:
            return
        last_id = page[-1].id
        hashes = {address_hash(row.email): row.id for row in page}
        suppressed = {
            hashes[digest]
            for digest in session.scalars(
                select(Suppression.email_hash).where(Suppression.email_hash.in_(list(hashes)))
            )
        }
        yield [row.id for row in page if row.id not in suppressed]


def count_invitable(session: Session, *, now: datetime) -> int:
    """How many readers a round started at `now` would invite."""
    if session.scalar(select(Suppression.id).limit(1)) is None:  # the desk's page, mostly
        return session.scalar(select(func.count(Subscriber.id)).where(_invitable(now))) or 0
    return sum(len(ids) for ids in _unsuppressed_pages(session, now))


def invite(session: Session, *, now: datetime) -> int:
    """Start a round: mark every reader to invite with `invited_at = now`; returns how many.

    Flushes, never commits: after the caller's commit, ring the worker (dispatch
    SEND_INVITATIONS). Each row is claimed with a compare-and-set, so two rounds started at
    once (a double click, the desk and the CLI) invite nobody twice.
    """
    invited = 0
    for ids in list(_unsuppressed_pages(session, now)):
        if not ids:
            continue
        invited += session.execute(
            update(Subscriber)
            .where(Subscriber.id.in_(ids), _invitable(now))
            .values(invited_at=now, invitation_sent_at=None)
            .execution_options(synchronize_session=False)
        ).rowcount
    return invited


def _waiting() -> ColumnElement[bool]:
    return and_(
        Subscriber.invited_at.is_not(None),
        Subscriber.invitation_sent_at.is_(None),
        Subscriber.status == SubscriberStatus.PENDING,
    )


def due(session: Session, *, after_id: int = 0, limit: int = 100) -> list[tuple[int, str]]:
    """(id, uid) of invitations waiting to be sent, by id from `after_id` on."""
    rows = session.execute(
        select(Subscriber.id, Subscriber.uid)
        .where(_waiting(), Subscriber.id > after_id)
        .order_by(Subscriber.id)
        .limit(limit)
    ).all()
    return [(row.id, row.uid) for row in rows]


def waiting_since(session: Session, before: datetime) -> bool:
    """Whether an invitation of a round started before `before` is still not sent: its ring
    failed, or the run that had it stopped."""
    return (
        session.scalar(
            select(Subscriber.id).where(_waiting(), Subscriber.invited_at <= before).limit(1)
        )
        is not None
    )


def still_wanted(session: Session, subscriber: Subscriber) -> bool:
    """Whether the invitation a reader is owed should still go: pending and not suppressed.
    One that should not is taken out of its round (it was never sent)."""
    wanted = subscriber.status is SubscriberStatus.PENDING and (
        session.scalar(
            select(Suppression.id).where(Suppression.email_hash == address_hash(subscriber.email))
        )
        is None
    )
    if not wanted:
        subscriber.invited_at = None
        subscriber.invitation_sent_at = None
    return wanted


def mark_sent(subscriber: Subscriber, *, now: datetime) -> None:
    """The worker handed the invitation to the mail server (or the server refused this
    address for good: it is not sent again this round). It is a confirmation email too, so
    a signup in the next minutes sends no second one (subscriptions.CONFIRMATION_INTERVAL)."""
    subscriber.invitation_sent_at = now
    subscriber.confirmation_sent_at = now


def summary(session: Session, *, now: datetime) -> InvitationSummary:
    last_at = session.scalar(select(func.max(Subscriber.invited_at)))
    last_count = (
        session.scalar(
            select(func.count()).select_from(Subscriber).where(Subscriber.invited_at == last_at)
        )
        if last_at
        else 0
    )
    waiting = session.scalar(select(func.count()).select_from(Subscriber).where(_waiting()))
    return InvitationSummary(
        invitable=count_invitable(session, now=now),
        last_at=last_at,
        last_count=last_count or 0,
        waiting=waiting or 0,
    )
