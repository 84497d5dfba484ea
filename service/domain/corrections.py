"""Corrections: a release that corrects an earlier, sent one.

A correction is emailed only to the readers who got the original, and each copy carries
`In-Reply-To` and `References` (RFC 5322 §3.6.4) naming the Message-ID of the email in which
that reader got the original, so that mail clients show the two in one thread.

`original_copies` is the one answer to "who got the original, and in which email": planning
(sending.ledger.recipient_filter) limits the audience with it, and the batch takes each
reader's thread from it (`copies_to`). A reader who got the original inside another kind of
email (a digest listing it) is added there, as another `CopyKind`, and nowhere else.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from service.db import MAX_ROW_ID
from service.domain.errors import N_, InvalidInput
from service.domain.release_messages import delivery_message_id
from service.models import Delivery, DeliveryStatus, Release, ReleaseKind, ReleaseStatus

# The longest chain of corrections of corrections followed when looking for a cycle.
MAX_CHAIN = 100


class InvalidCorrection(InvalidInput):
    code = "invalid_correction"
    message = N_("This release cannot be a correction of that one.")


class CopyKind(enum.StrEnum):
    """The kind of email in which a reader got the original."""

    RELEASE = "release"  # the original's own email (Delivery rows of the original, sent)
    DIGEST = "digest"  # a digest that listed it (a row of the original's, sent in digest_id)


@dataclass(frozen=True)
class OriginalCopy:
    """The email in which one reader got the original: its kind and the id of what was sent
    (for CopyKind.RELEASE, the original release's id; for CopyKind.DIGEST, the digest
    run's, whose Message-ID is built the same way)."""

    kind: CopyKind
    source_id: int

    def message_id(self, subscriber_uid: str, domain: str) -> str:
        """The Message-ID that email carried to this reader (as sent; `domain` is MAIL_FROM's,
        as release_messages.delivery_message_id takes it)."""
        return delivery_message_id(self.source_id, subscriber_uid, domain)


def original_copies(original_id: int) -> Select[tuple[int, str, int]]:
    """Who got release `original_id`, and in which email: one row per reader and email,
    (subscriber_id, kind (a CopyKind value), source_id). Only what went out counts: a
    delivery that is SENT, in the original's own email or in the digest that listed it
    (domain/digests: the row names that digest run); not one pending, held for a digest
    still to go, failed, skipped or cancelled.

    A SELECT to use as a subquery (planning) or to run for some readers (`copies_to`)."""
    in_digest = Delivery.digest_id.is_not(None)
    return select(
        Delivery.subscriber_id.label("subscriber_id"),
        case((in_digest, CopyKind.DIGEST.value), else_=CopyKind.RELEASE.value).label("kind"),
        func.coalesce(Delivery.digest_id, Delivery.release_id).label("source_id"),
    ).where(Delivery.release_id == original_id, Delivery.status == DeliveryStatus.SENT)


def original_held(original_id: int) -> Select[tuple[int]]:
    """Readers for whom release `original_id` is held for a digest not yet sent: a correction
    is held for them too, to go in the same digest or a later one (a subquery)."""
    return select(Delivery.subscriber_id).where(
        Delivery.release_id == original_id, Delivery.status == DeliveryStatus.HELD
    )


def copies_to(
    session: Session, original_id: int, subscriber_ids: Iterable[int]
) -> dict[int, OriginalCopy]:
    """For each of `subscriber_ids` who got the original (original_copies), the email they
    got it in; readers who did not are left out. One copy per reader: their own delivery of
    the original when they had one."""
    ids = list(subscriber_ids)
    if not ids:
        return {}
    copies = original_copies(original_id).subquery()
    rows = session.execute(
        select(copies.c.subscriber_id, copies.c.kind, copies.c.source_id).where(
            copies.c.subscriber_id.in_(ids)
        )
    ).all()
    found: dict[int, OriginalCopy] = {}
    for subscriber_id, kind, source_id in rows:
        copy = OriginalCopy(CopyKind(kind), source_id)
        if subscriber_id not in found or copy.kind is CopyKind.RELEASE:
            found[subscriber_id] = copy
    return found


def parse_corrects(raw: object) -> int | None:
    """The `corrects` field: a release id, or null (not a correction). InvalidInput else."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 < raw <= MAX_ROW_ID:
        raise InvalidInput(
            N_("The field '%(field)s' must be the id of a release, or null."), field="corrects"
        )
    return raw


def check_original(session: Session, original_id: int, *, correction_id: int | None) -> Release:
    """The release `original_id` if the release `correction_id` (None: one not yet saved) may
    correct it: it exists, it is not the correction itself, it was sent by email (SENT: a
    draft, a schedule, a send still under way, a cancelled or an archive-only release has no
    readers to correct), and the chain of corrections it stands on does not lead back to the
    correction. Raises InvalidCorrection."""
    original = session.get(Release, original_id)
    if original is None or original.kind is ReleaseKind.DIGEST:
        raise InvalidCorrection(N_("There is no release %(id)s to correct."), id=original_id)
    if correction_id is not None and original_id == correction_id:
        raise InvalidCorrection(N_("A release cannot be a correction of itself."))
    if original.status is not ReleaseStatus.SENT:
        raise InvalidCorrection(N_("Only a release that has been sent by email can be corrected."))
    seen: set[int] = {original.id}
    step: Any = original
    for _ in range(MAX_CHAIN):
        if step.corrects_id is None:
            break
        if step.corrects_id == correction_id or step.corrects_id in seen:
            raise InvalidCorrection(N_("Corrections cannot go round in a circle."))
        seen.add(step.corrects_id)
        step = session.get(Release, step.corrects_id)
        if step is None:
            break
    return original


def correctable(
    session: Session, *, excluding: int | None = None, limit: int = 200
) -> list[Release]:
    """Releases a correction may name (sent by email), newest first, but `excluding`: what
    the desk's editor offers."""
    query = (
        select(Release)
        .where(
            Release.status == ReleaseStatus.SENT,
            Release.kind == ReleaseKind.RELEASE,
            Release.id != (excluding or 0),
        )
        .order_by(Release.published_at.desc(), Release.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))
