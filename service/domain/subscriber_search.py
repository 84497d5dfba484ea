"""Finding subscribers for the publisher's desk: filters, newest first, one keyset page at a time.

A page is read by id, never by offset, so that the hundredth page costs what the first does and
a row added or erased meanwhile neither repeats nor skips anyone. `before` leads to older rows,
`after` to newer ones; the count of every matching row comes with each page.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, exists, func, or_, select
from sqlalchemy.orm import Session

from service.config import TOPIC_PATTERN
from service.db import MAX_ROW_ID
from service.domain.addresses import MAX_ADDRESS_LENGTH, search_forms, trim_address
from service.domain.errors import N_, InvalidInput
from service.locales import LANGUAGES
from service.models import Frequency, Subscriber, SubscriberStatus, SubscriberTopic

PAGE_SIZE = 50
MAX_CURSOR = MAX_ROW_ID
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class SubscriberFilter:
    """What to look for; None matches everything."""

    address: str | None = None  # a part of the address
    status: SubscriberStatus | None = None
    language: str | None = None
    topic: str | None = None

    @property
    def active(self) -> bool:
        return any(
            value is not None for value in (self.address, self.status, self.language, self.topic)
        )


@dataclass(frozen=True)
class SubscriberRow:
    id: int
    uid: str
    email: str
    name: str | None
    status: SubscriberStatus
    language: str
    topics: tuple[str, ...]
    created_at: datetime
    frequency: Frequency
    confirmed_at: datetime | None


@dataclass(frozen=True)
class SubscriberPage:
    rows: list[SubscriberRow]
    total: int  # every row that matches the filter, on all pages
    older: int | None  # `before` for the next page of older rows, None when there is none
    newer: int | None  # `after` for the page of newer rows, None on the first page


def parse_filter(
    *,
    address: str | None = None,
    status: str | None = None,
    language: str | None = None,
    topic: str | None = None,
) -> SubscriberFilter:
    """Filters as a person typed them (query string values); empty means any."""
    return SubscriberFilter(
        address=_parse_address_part(address),
        status=_parse_status(status),
        language=_parse_language(language),
        topic=_parse_topic(topic),
    )


def parse_cursor(raw: str | None, name: str) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_CURSOR:
        raise InvalidInput(
            N_("%(name)s must be a whole number from %(low)s to %(high)s."),
            name=name,
            low=0,
            high=MAX_CURSOR,
        )
    return int(raw)


def _parse_address_part(raw: str | None) -> str | None:
    text = trim_address(raw or "").lower()
    if not text:
        return None
    if len(text) > MAX_ADDRESS_LENGTH:
        raise InvalidInput(
            N_("Search for at most %(count)s characters of an address."), count=MAX_ADDRESS_LENGTH
        )
    if _CONTROL_CHARACTERS.search(text):
        raise InvalidInput(N_("An address holds no control characters."))
    return text


def _parse_status(raw: str | None) -> SubscriberStatus | None:
    text = (raw or "").strip().lower()
    if not text:
        return None
    try:
        return SubscriberStatus(text)
    except ValueError:
        raise InvalidInput(
            N_("Status must be one of: %(statuses)s."),
            statuses=", ".join(status.value for status in SubscriberStatus),
        ) from None


def _parse_language(raw: str | None) -> str | None:
    text = (raw or "").strip().lower()
    if not text:
        return None
    if text not in LANGUAGES:
        raise InvalidInput(
            N_("Language must be one of: %(languages)s."), languages=", ".join(LANGUAGES)
        )
    return text


def _parse_topic(raw: str | None) -> str | None:
    text = (raw or "").strip().lower()
    if not text:
        return None
    if not TOPIC_PATTERN.match(text):
        raise InvalidInput(
            N_("A topic is a short name of a-z, 0-9 and hyphens, at most 40 characters.")
        )
    return text


def _conditions(wanted: SubscriberFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if wanted.address is not None:
        conditions.append(address_contains(wanted.address))
    if wanted.status is not None:
        conditions.append(Subscriber.status == wanted.status)
    if wanted.language is not None:
        conditions.append(Subscriber.language == wanted.language)
    if wanted.topic is not None:
        conditions.append(
            exists().where(
                SubscriberTopic.subscriber_id == Subscriber.id,
                SubscriberTopic.topic == wanted.topic,
            )
        )
    return conditions


def address_contains(fragment: str) -> ColumnElement[bool]:
    """Rows whose address holds `fragment` as a person typed it, a Unicode domain included
    (addresses.search_forms); any case, and % and _ are literal characters."""
    return or_(
        *(Subscriber.email.contains(form, autoescape=True) for form in search_forms(fragment))
    )


def count(session: Session, wanted: SubscriberFilter) -> int:
    return (
        session.scalar(select(func.count()).select_from(Subscriber).where(*_conditions(wanted)))
        or 0
    )


def search(
    session: Session,
    wanted: SubscriberFilter,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = PAGE_SIZE,
) -> SubscriberPage:
    """One page of matching subscribers, newest (highest id) first.

    No cursor: the newest page. `before=id`: the rows just older than that id. `after=id`: the
    rows just newer than it; when no more than a page is newer, the newest page instead, so that
    going back always ends on the same first page.
    """
    if before is not None and after is not None:
        raise InvalidInput(N_("Ask for older or for newer subscribers, not both."))
    conditions = _conditions(wanted)
    columns = select(
        Subscriber.id,
        Subscriber.uid,
        Subscriber.email,
        Subscriber.name,
        Subscriber.status,
        Subscriber.language,
        Subscriber.created_at,
        Subscriber.confirmed_at,
        Subscriber.frequency,
    ).where(*conditions)
    newest_first = columns.order_by(Subscriber.id.desc()).limit(limit + 1)

    found: Sequence[Row[Any]] = []
    has_newer = has_older = False
    if after is not None:
        newer = session.execute(
            columns.where(Subscriber.id > after).order_by(Subscriber.id).limit(limit + 1)
        ).all()
        if len(newer) > limit:
            found = list(reversed(newer[:limit]))
            has_newer = True
            has_older = _exists(session, conditions, Subscriber.id < found[-1].id)
    if not found:
        query = newest_first if after is not None else _older(newest_first, before)
        found = session.execute(query).all()
        has_older = len(found) > limit
        found = found[:limit]
        if before is None or after is not None:
            has_newer = False
        elif found:
            has_newer = _exists(session, conditions, Subscriber.id > found[0].id)
        else:  # past the oldest row, from a stale link: the way back is to the start
            has_newer = _exists(session, conditions, Subscriber.id >= before)

    topics = _topics_of(session, [row.id for row in found])
    rows = [
        SubscriberRow(
            id=row.id,
            uid=row.uid,
            email=row.email,
            name=row.name,
            status=row.status,
            language=row.language,
            topics=tuple(topics.get(row.id, ())),
            created_at=row.created_at,
            confirmed_at=row.confirmed_at,
            frequency=row.frequency,
        )
        for row in found
    ]
    newer_cursor = (rows[0].id if rows else (before or 1) - 1) if has_newer else None
    return SubscriberPage(
        rows=rows,
        total=count(session, wanted),
        older=rows[-1].id if rows and has_older else None,
        newer=newer_cursor,
    )


def _older(query: Select[Any], before: int | None) -> Select[Any]:
    return query if before is None else query.where(Subscriber.id < before)


def _exists(
    session: Session, conditions: list[ColumnElement[bool]], where: ColumnElement[bool]
) -> bool:
    return session.scalar(select(exists().where(*conditions, where))) or False


def _topics_of(session: Session, ids: list[int]) -> dict[int, list[str]]:
    topics: dict[int, list[str]] = defaultdict(list)
    if not ids:
        return topics
    for subscriber_id, topic in session.execute(
        select(SubscriberTopic.subscriber_id, SubscriberTopic.topic)
        .where(SubscriberTopic.subscriber_id.in_(ids))
        .order_by(SubscriberTopic.subscriber_id, SubscriberTopic.topic)
    ):
        topics[subscriber_id].append(topic)
    return topics


def by_id(
    session: Session,
    *,
    after: int,
    limit: int,
    status: SubscriberStatus | None = None,
    address_part: str | None = None,
) -> list[Subscriber]:
    """At most `limit` subscribers with an id above `after`, by id (the API's keyset pages);
    only those of `status`, and those whose address holds `address_part` (address_contains:
    any case, % and _ are themselves, a Unicode domain finds its rows), when given."""
    query = select(Subscriber).where(Subscriber.id > after).order_by(Subscriber.id)
    if status is not None:
        query = query.where(Subscriber.status == status)
    if address_part:
        query = query.where(address_contains(address_part))
    return list(session.scalars(query.limit(limit)))


def find_by_uid(session: Session, uid: str) -> Subscriber | None:
    """The subscriber a desk link names; uids, unlike ids, are never given to anyone else."""
    if not re.fullmatch(r"[0-9a-f]{32}", uid):
        return None
    return session.scalar(select(Subscriber).where(Subscriber.uid == uid))
