"""The consent ledger: append a row for each consent-relevant act, read a reader's rows back.

Rows are never updated: no function here or elsewhere changes one, the ORM refuses to flush a
change to a loaded row (LedgerIsAppendOnly), and a database trigger refuses any UPDATE that
goes round the ORM (migration 0012). An erasure deletes the reader's rows (`forget`) and
appends an anonymous one that says only that, when, and through which door.

The wording a reader was shown is kept once per SHA-256 of its exact text in `consent_texts`;
the row holds the hash. The web layer renders the wording (it knows the language) and passes it
in as a Wording; the IP comes already cut to CONSENT_IP_PRECISION (service/domain/ip_precision).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, event, insert, select
from sqlalchemy.orm import Mapper, ORMExecuteState, Session

from service.db import insert_for
from service.domain.errors import N_, DomainError, ErrorKind
from service.models import (
    ConsentAct,
    ConsentChannel,
    ConsentRecord,
    ConsentText,
    Subscriber,
)

MAX_USER_AGENT = 512
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class LedgerIsAppendOnly(DomainError):
    code = "ledger_append_only"
    kind = ErrorKind.CONFLICT
    message = N_("The consent record is kept as it was written: its rows are never changed.")


@dataclass(frozen=True)
class Origin:
    """Where an act came from: the door, and for a person at a browser their IP (already cut
    to CONSENT_IP_PRECISION) and user agent as sent."""

    source: ConsentChannel
    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class Wording:
    """The exact text a reader was shown, in the language they were shown it in."""

    language: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One row as the export and the desk show it."""

    occurred_at: datetime
    act: ConsentAct
    source: ConsentChannel
    ip: str | None
    user_agent: str | None
    text_sha256: str | None
    text: str | None
    text_language: str | None
    language: str | None
    topics: str | None
    note: str | None
    frequency: str | None = None


READER_PAGE = Origin(ConsentChannel.FORM)


def clean_user_agent(raw: str | None) -> str | None:
    """A header is whatever the client sent: PostgreSQL refuses NUL, and no browser sends one."""
    text = _CONTROL_CHARACTERS.sub("", raw or "")
    return text[:MAX_USER_AGENT] or None


def append(
    session: Session,
    subscriber: Subscriber,
    act: ConsentAct,
    origin: Origin,
    *,
    now: datetime,
    wording: Wording | None = None,
    note: str | None = None,
) -> None:
    """One row for `act` by `subscriber`, with the choices the row holds now (language,
    topics, how often) and the wording's hash (its text kept once)."""
    digest = keep_wording(session, wording, now=now) if wording is not None else None
    session.execute(
        insert(ConsentRecord.__table__).values(
            subscriber_id=subscriber.id,
            occurred_at=now,
            act=act,
            source=origin.source,
            ip=origin.ip,
            user_agent=clean_user_agent(origin.user_agent),
            text_sha256=digest,
            language=subscriber.language,
            topics=",".join(subscriber.topics),
            frequency=subscriber.frequency.value,
            note=note,
        )
    )


@dataclass(frozen=True)
class Choices:
    """A reader's choices as a row of the ledger keeps them."""

    subscriber_id: int
    language: str
    topics: Sequence[str]
    frequency: str = "immediately"


def append_each(
    session: Session,
    act: ConsentAct,
    readers: Collection[Choices],
    origin: Origin,
    *,
    now: datetime,
    note: str | None = None,
) -> None:
    """The same act for many readers at once (an import's chunk), in one executemany."""
    if not readers:
        return
    common = {
        "occurred_at": now,
        "act": act,
        "source": origin.source,
        "ip": origin.ip,
        "user_agent": clean_user_agent(origin.user_agent),
        "text_sha256": None,
        "note": note,
    }
    session.execute(
        insert(ConsentRecord.__table__),
        [
            {
                **common,
                "subscriber_id": reader.subscriber_id,
                "language": reader.language,
                "topics": ",".join(sorted(reader.topics)),
                "frequency": reader.frequency,
            }
            for reader in readers
        ],
    )


def append_anonymous(session: Session, act: ConsentAct, origin: Origin, *, now: datetime) -> None:
    """A row that names nobody (an erasure): the act, when, and the door; no IP, no user
    agent, no choices."""
    session.execute(
        insert(ConsentRecord.__table__).values(
            subscriber_id=None, occurred_at=now, act=act, source=origin.source
        )
    )


def keep_wording(session: Session, wording: Wording, *, now: datetime) -> str:
    """Store the wording's text unless its hash is stored already; its hash (hex)."""
    digest = wording.sha256
    session.execute(
        insert_for(session, ConsentText)
        .values(sha256=digest, language=wording.language, text=wording.text, first_seen_at=now)
        .on_conflict_do_nothing(index_elements=["sha256"])
    )
    return digest


def history(session: Session, subscriber_id: int) -> Sequence[Entry]:
    """The reader's rows, oldest first, each with the text of its wording."""
    rows = session.execute(
        select(ConsentRecord, ConsentText.text, ConsentText.language)
        .outerjoin(ConsentText, ConsentText.sha256 == ConsentRecord.text_sha256)
        .where(ConsentRecord.subscriber_id == subscriber_id)
        .order_by(ConsentRecord.occurred_at, ConsentRecord.id)
    )
    return [
        Entry(
            occurred_at=record.occurred_at,
            act=record.act,
            source=record.source,
            ip=record.ip,
            user_agent=record.user_agent,
            text_sha256=record.text_sha256,
            text=text,
            text_language=text_language,
            language=record.language,
            topics=record.topics,
            note=record.note,
            frequency=record.frequency,
        )
        for record, text, text_language in rows
    ]


def forget(session: Session, subscriber_id: int) -> None:
    """Delete the reader's rows (an erasure). Deleting is allowed; changing is not."""
    session.execute(delete(ConsentRecord).where(ConsentRecord.subscriber_id == subscriber_id))


@event.listens_for(ConsentRecord, "before_update")
@event.listens_for(ConsentText, "before_update")
def _refuse_update(mapper: Mapper[Any], connection: Any, target: object) -> None:
    raise LedgerIsAppendOnly()


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_update(state: ORMExecuteState) -> None:
    if (
        state.is_update
        and state.bind_mapper is not None
        and (state.bind_mapper.class_ in (ConsentRecord, ConsentText))
    ):
        raise LedgerIsAppendOnly()
