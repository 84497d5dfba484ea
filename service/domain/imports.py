"""Subscribers in and out as CSV.

The import streams: rows are read one at a time, checked, and written in chunks of
``CHUNK_SIZE`` with one lookup of existing and suppressed addresses and one multi-row INSERT
per chunk. Bad rows are reported by line number and skipped; good rows are kept. An address
already present is left exactly as it is, and an address on the suppression list is never added.

The export pages through the table by id (keyset), so memory stays flat whatever its size,
and writes the columns the import reads back.
"""

from __future__ import annotations

import csv
import enum
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from typing import Any, BinaryIO, TextIO

from sqlalchemy import Insert, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.domain import (
    consent_ledger,
    subscription_events,
    text_files,
    webhook_endpoints,
    webhook_outbox,
)
from service.domain.addresses import normalize_address, trim_address
from service.domain.digests import parse_frequency
from service.domain.errors import N_, DomainError, ErrorKind, InvalidInput
from service.domain.subscriptions import parse_language, parse_topics
from service.domain.webhook_endpoints import EventType
from service.models import (
    ConsentAct,
    ConsentChannel,
    ConsentSource,
    Frequency,
    Subscriber,
    SubscriberStatus,
    SubscriberTopic,
    SubscriptionEventKind,
    Suppression,
    address_hash,
)

CHUNK_SIZE = 1000
MAX_NAME_LENGTH = 200
MAX_CONSENT_NOTE_LENGTH = 500
IMPORT_COLUMNS = ("email", "language", "topics", "frequency", "name", "status")
EXPORT_COLUMNS = (
    "email",
    "name",
    "status",
    "language",
    "topics",
    "frequency",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
    "consent_source",
)
# Read for safety only: a row an earlier system marks as opted out is never imported, so that
# an export of unsubscribed readers cannot subscribe them again. Other columns are ignored.
OPTED_OUT_STATUSES = frozenset(
    {SubscriberStatus.UNSUBSCRIBED.value, SubscriberStatus.BOUNCED.value}
)
_COLUMN_ALIASES = {"e-mail": "email", "e-post": "email", "epost": "email"}
# A spreadsheet cell may hold one topic a line.
_TOPIC_SEPARATORS = re.compile(r"[;,\s]")
# Told by the header: the one that splits it into columns of which one is email. Excel writes
# ";" where the decimal sign is a comma (Norwegian), and tabs in its "Unicode text".
DELIMITERS = (",", ";", "\t")
_SEPARATOR_HINT = re.compile(r"sep=([,;\t|])", re.IGNORECASE)
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
# A cell starting with one of these is a formula to a spreadsheet. The export puts an apostrophe
# in front of such a name (which spreadsheets hide) and the import takes it off again.
_FORMULA_START = ("=", "+", "-", "@", "'")


class ImportFileError(DomainError):
    code = "invalid_file"
    kind = ErrorKind.INVALID
    message = N_("The file could not be read as CSV.")


class Outcome(enum.StrEnum):
    IMPORTED = "imported"
    EXISTS = "exists"
    SUPPRESSED = "suppressed"
    OPTED_OUT = "opted out"
    REJECTED = "rejected"


@dataclass(frozen=True)
class RowNote:
    """What happened to one line that was not imported. `reason` is English text; `message`
    and `params`, when set, are the same reason as a catalog message, for other languages."""

    line: int
    outcome: Outcome
    email: str | None = None
    reason: str | None = None
    message: str | None = None
    params: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class ImportRow:
    line: int
    email: str
    name: str | None
    language: str
    topics: tuple[str, ...]
    opted_out: bool = False
    frequency: Frequency = Frequency.IMMEDIATELY


@dataclass(frozen=True)
class ImportOptions:
    consent_text_version: str
    confirmed: bool = False
    consent_note: str | None = None
    offered_topics: tuple[str, ...] = ()


@dataclass
class ImportReport:
    imported: int = 0
    exists: int = 0
    suppressed: int = 0
    opted_out: int = 0
    rejected: int = 0
    notes: list[RowNote] = field(default_factory=list)
    ignored_columns: tuple[str, ...] = ()

    def record(self, note: RowNote) -> None:
        counter = _COUNTERS[note.outcome]
        setattr(self, counter, getattr(self, counter) + 1)
        self.notes.append(note)

    def add(self, other: ImportReport, *, keep_notes: bool = True) -> None:
        for counter in _COUNTERS.values():
            setattr(self, counter, getattr(self, counter) + getattr(other, counter))
        self.imported += other.imported
        if keep_notes:
            self.notes.extend(other.notes)

    @property
    def rows(self) -> int:
        return self.imported + self.exists + self.suppressed + self.opted_out + self.rejected

    @property
    def unlisted(self) -> int:
        """Lines not imported that `notes` leaves out (a long report keeps only the first)."""
        return self.rows - self.imported - len(self.notes)


_COUNTERS = {
    Outcome.EXISTS: "exists",
    Outcome.SUPPRESSED: "suppressed",
    Outcome.OPTED_OUT: "opted_out",
    Outcome.REJECTED: "rejected",
}


def csv_problem(error: csv.Error) -> InvalidInput:
    """Python's csv reader's complaint about a line (English, its own words) as one of our
    translatable messages (Modules/_csv.c names each of these)."""
    text = str(error)
    if "field larger than field limit" in text:
        return InvalidInput(
            N_("A field on this line is longer than %(count)s characters."),
            count=csv.field_size_limit(),
        )
    if "NUL" in text:
        return InvalidInput(N_("This line holds a NUL character, which no text has."))
    if "expected after" in text or "end of data" in text:
        return InvalidInput(
            N_(
                "A quotation mark is in the wrong place: a quoted field ends with a quotation "
                "mark followed by the separator or the end of the line."
            )
        )
    return InvalidInput(N_("This line could not be read as CSV."))


def check_consent_note(raw: str | None) -> str | None:
    """The note kept with every imported row: one line of plain text, or nothing."""
    if raw is None:
        return None
    note = " ".join(_CONTROL_CHARACTERS.sub(" ", raw).split())
    if len(note) > MAX_CONSENT_NOTE_LENGTH:
        raise InvalidInput(
            N_("A consent note has at most %(count)s characters."), count=MAX_CONSENT_NOTE_LENGTH
        )
    return note or None


def open_csv(stream: BinaryIO) -> CsvSource:
    """The one reader of every door that takes a CSV file (desk, CLI, import jobs).

    `stream` is binary and seekable; its encoding is told by text_files.open_text (UTF-8, or
    UTF-16 with a byte order mark). Raises text_files.UnreadableText or ImportFileError.
    """
    return CsvSource(text_files.open_text(stream))


class CsvSource:
    """A CSV text stream with a header row, read as RFC 4180 and spreadsheets write it.

    Fields are separated by `,`, `;` or a tab, whichever the header is written with (or as a
    first line such as `sep=;` says, which Excel reads and some programs write); a quoted
    field may hold the separator, doubled quotes and line breaks (RFC 4180 §2.6-2.7); lines
    end in CR LF, LF or CR. Line numbers are the file's physical lines: a record that a line
    break in a quoted field spreads over lines 2-3 is line 2, and the record after it line 4.

    Give it a stream opened with ``newline=""`` (open_csv does); a BOM left in the text is
    taken off here too.
    """

    def __init__(self, stream: Iterable[str]) -> None:
        lines = iter(stream)
        first = next(lines, "").removeprefix("\ufeff")
        if not first.strip():
            raise ImportFileError(
                N_("The file is empty: its first line must name the columns, such as email,name.")
            )
        hint = _SEPARATOR_HINT.fullmatch(first.rstrip("\r\n"))
        if hint:  # Excel's "sep=;" line before the header names the separator
            self.delimiter = hint.group(1)
            self._reader = csv.reader(chain([first], lines), delimiter=self.delimiter)
            next(self._reader)
        else:
            self.delimiter = _delimiter(first)
            self._reader = csv.reader(chain([first], lines), delimiter=self.delimiter)
        header = next(self._reader, [])
        self.columns = _column_names(header)
        if "email" not in self.columns:
            raise ImportFileError(
                N_("The first line must name the columns, and one of them must be email.")
            )
        # The first column of a name wins when a header repeats one.
        self._index: dict[str, int] = {}
        for position, column in enumerate(self.columns):
            self._index.setdefault(column, position)
        self.ignored_columns = tuple(
            column for column in self.columns if column and column not in IMPORT_COLUMNS
        )

    @property
    def lines_read(self) -> int:
        """The file's lines read so far, the header's included."""
        return self._reader.line_num

    def skip_to(self, line: int) -> None:
        """Pass over the records that end on or before `line` unchecked, as an import resumed
        after an interruption does; line numbers stay those of the file."""
        while self._reader.line_num < line:
            try:
                next(self._reader)
            except StopIteration:
                return
            except csv.Error:
                continue

    def rows(self, offered_topics: Sequence[str] = ()) -> Iterator[ImportRow | RowNote]:
        """Each data row, checked: an ImportRow, or a RowNote saying why it is rejected."""
        last_line = self._reader.line_num
        while True:
            line = last_line + 1
            try:
                values = next(self._reader)
            except StopIteration:
                return
            except csv.Error as error:
                last_line = self._reader.line_num
                problem = csv_problem(error)
                yield RowNote(
                    line,
                    Outcome.REJECTED,
                    reason=problem.text,
                    message=problem.message,
                    params=tuple(problem.params.items()),
                )
                continue
            last_line = self._reader.line_num
            if not any(value.strip() for value in values):
                continue
            try:
                if last_line > line and self._holds_a_row(values):
                    raise InvalidInput(
                        N_(
                            "A quoted field runs from line %(first)s to line %(last)s: "
                            "those lines are skipped. Look for a stray quotation mark."
                        ),
                        first=line,
                        last=last_line,
                    )
                row: ImportRow | RowNote = self._parse(line, values, offered_topics)
            except DomainError as error:
                email = _cell(values, self._index.get("email"))
                row = RowNote(
                    line,
                    Outcome.REJECTED,
                    email,
                    error.text,
                    message=error.message,
                    params=tuple(error.params.items()),
                )
            yield row

    def _holds_a_row(self, values: list[str]) -> bool:
        """Whether a quoted field that runs over a line break holds what reads as a row of its
        own: the separator, and an address in the email column. That is a stray quotation mark
        swallowing the rows after it, not a cell with a line break in it."""
        for value in values:
            for text in value.splitlines()[1:]:
                if self.delimiter not in text:
                    continue
                cells = next(csv.reader([text], delimiter=self.delimiter), [])
                candidate = _cell(cells, self._index["email"])
                if "@" not in candidate:
                    continue
                try:
                    normalize_address(candidate)
                except DomainError:
                    continue
                return True
        return False

    def _parse(self, line: int, values: list[str], offered_topics: Sequence[str]) -> ImportRow:
        if len(values) > len(self.columns) and any(v.strip() for v in values[len(self.columns) :]):
            raise InvalidInput(
                N_("This line has %(found)s fields, but the first line names %(expected)s."),
                found=len(values),
                expected=len(self.columns),
            )

        def get(column: str) -> str:
            return _cell(values, self._index.get(column))

        email = normalize_address(_unguard_formula(trim_address(get("email"))))
        language = parse_language(get("language"))
        topics = parse_topics(_TOPIC_SEPARATORS.split(get("topics")), offered_topics)
        return ImportRow(
            line=line,
            email=email,
            name=_clean_name(get("name")),
            language=language,
            topics=tuple(sorted(topics)),
            opted_out=get("status").lower() in OPTED_OUT_STATUSES,
            frequency=parse_frequency(get("frequency")),
        )


def _column_names(header: list[str]) -> tuple[str, ...]:
    return tuple(_COLUMN_ALIASES.get(name, name) for name in (c.strip().lower() for c in header))


def _delimiter(header: str) -> str:
    """The separator the header line is written with: of those that split it into columns
    of which one is email, the one that gives the most columns; `,` when none does."""
    best, most = ",", 0
    for delimiter in DELIMITERS:
        columns = _column_names(next(csv.reader([header], delimiter=delimiter), []))
        if "email" in columns and len(columns) > most:
            best, most = delimiter, len(columns)
    return best


def _cell(values: list[str], position: int | None) -> str:
    if position is None or position >= len(values):
        return ""
    return values[position].strip()


def _clean_name(raw: str) -> str | None:
    raw = _unguard_formula(raw)
    name = " ".join(_CONTROL_CHARACTERS.sub(" ", raw).split())
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(N_("A name has at most %(count)s characters."), count=MAX_NAME_LENGTH)
    return name or None


def import_rows(
    session: Session, rows: Sequence[ImportRow], options: ImportOptions, *, now: datetime
) -> ImportReport:
    """Add one chunk of checked rows: one query for existing addresses, one for suppressed
    ones, one multi-row INSERT for the subscribers, one for their topics, and (when they come
    in confirmed) one for the anonymous log of joins that the desk's charts read."""
    report = ImportReport()
    fresh: dict[str, ImportRow] = {}
    for row in rows:
        if row.opted_out:
            report.record(RowNote(row.line, Outcome.OPTED_OUT, row.email))
        elif row.email in fresh:
            report.record(RowNote(row.line, Outcome.EXISTS, row.email))
        else:
            fresh[row.email] = row
    if not fresh:
        return report

    hashes = {address_hash(email): email for email in fresh}
    suppressed = {
        hashes[digest]
        for digest in session.scalars(
            select(Suppression.email_hash).where(Suppression.email_hash.in_(list(hashes)))
        )
    }
    existing = set(
        session.scalars(select(Subscriber.email).where(Subscriber.email.in_(list(fresh))))
    )
    for email in list(fresh):
        if email in suppressed:
            report.record(RowNote(fresh.pop(email).line, Outcome.SUPPRESSED, email))
        elif email in existing:
            report.record(RowNote(fresh.pop(email).line, Outcome.EXISTS, email))
    if not fresh:
        return report

    status = SubscriberStatus.CONFIRMED if options.confirmed else SubscriberStatus.PENDING
    values = [
        {
            "uid": uuid.uuid4().hex,
            "email": row.email,
            "name": row.name,
            "status": status,
            "language": row.language,
            "frequency": row.frequency,
            "token_version": 1,
            "bounce_score": 0,
            "consent_at": now,
            "consent_source": ConsentSource.IMPORT,
            "consent_text_version": options.consent_text_version,
            "consent_note": options.consent_note,
            "created_at": now,
            "updated_at": now,
            "confirmed_at": now if options.confirmed else None,
        }
        for row in fresh.values()
    ]
    # An address that a signup added since the lookup above is skipped, not an error. No
    # RETURNING: a plain executemany is several times faster (psycopg re-parses every long
    # multi-row statement), and our own uids then name exactly the rows that went in.
    session.execute(_insert_new_subscribers(session), values)
    inserted = select(Subscriber.email, Subscriber.id).where(
        Subscriber.uid.in_([value["uid"] for value in values])
    )
    ids = {email: subscriber_id for email, subscriber_id in session.execute(inserted)}
    topics = [
        {"subscriber_id": ids[email], "topic": topic}
        for email, row in fresh.items()
        if email in ids
        for topic in row.topics
    ]
    if topics:
        session.execute(insert(SubscriberTopic.__table__), topics)
    consent_ledger.append_each(
        session,
        ConsentAct.IMPORT,
        [
            consent_ledger.Choices(ids[email], row.language, row.topics, row.frequency.value)
            for email, row in fresh.items()
            if email in ids
        ],
        consent_ledger.Origin(ConsentChannel.IMPORT),
        now=now,
        note=options.consent_note,
    )
    if options.confirmed:
        subscription_events.record_each(
            session, SubscriptionEventKind.CONFIRMED, ids.values(), at=now
        )
        if webhook_endpoints.listening(session, EventType.SUBSCRIBER_CONFIRMED):
            joined = session.scalars(select(Subscriber).where(Subscriber.id.in_(ids.values())))
            webhook_outbox.subscribers_changed(
                session, EventType.SUBSCRIBER_CONFIRMED, joined, now=now
            )
    for email, row in fresh.items():
        if email in ids:
            report.imported += 1
        else:
            report.record(RowNote(row.line, Outcome.EXISTS, email))
    return report


def _insert_new_subscribers(session: Session) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING where the database has it (PostgreSQL, SQLite)."""
    dialect = session.get_bind().dialect.name
    table = Subscriber.__table__  # Core, not the ORM's bulk path: several times faster
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    return insert(table)


def import_batches(
    session: Session,
    source: CsvSource | Iterable[str],
    options: ImportOptions,
    *,
    now: datetime,
    chunk_size: int = CHUNK_SIZE,
) -> Iterator[ImportReport]:
    """Import chunk by chunk, yielding each chunk's report once its rows are in the session.

    Never commits: the caller may commit at each step, so that a large file neither holds one
    long transaction nor keeps what it wrote in memory.
    """
    if not isinstance(source, CsvSource):
        source = CsvSource(source)
    pending: list[ImportRow] = []
    report = ImportReport()
    for item in source.rows(options.offered_topics):
        if isinstance(item, RowNote):
            report.record(item)
        else:
            pending.append(item)
        if len(pending) + len(report.notes) >= chunk_size:
            report.add(import_rows(session, pending, options, now=now))
            report.notes.sort(key=lambda note: note.line)
            yield report
            pending, report = [], ImportReport()
    if pending or report.rows:
        report.add(import_rows(session, pending, options, now=now))
        report.notes.sort(key=lambda note: note.line)
        yield report


def export_rows(session: Session, *, page_size: int = CHUNK_SIZE) -> Iterator[dict[str, str]]:
    """Every subscriber as a row of EXPORT_COLUMNS, oldest first, one keyset page at a time."""
    last_id = 0
    while True:
        page = session.execute(
            select(
                Subscriber.id,
                Subscriber.email,
                Subscriber.name,
                Subscriber.status,
                Subscriber.language,
                Subscriber.frequency,
                Subscriber.created_at,
                Subscriber.confirmed_at,
                Subscriber.unsubscribed_at,
                Subscriber.consent_source,
            )
            .where(Subscriber.id > last_id)
            .order_by(Subscriber.id)
            .limit(page_size)
        ).all()
        if not page:
            return
        ids = [row.id for row in page]
        topics: dict[int, list[str]] = defaultdict(list)
        for subscriber_id, topic in session.execute(
            select(SubscriberTopic.subscriber_id, SubscriberTopic.topic)
            .where(SubscriberTopic.subscriber_id.in_(ids))
            .order_by(SubscriberTopic.subscriber_id, SubscriberTopic.topic)
        ):
            topics[subscriber_id].append(topic)
        for row in page:
            yield {
                # An address may start with = + - @ (RFC 5322 allows it): a spreadsheet would
                # run it as a formula, so it goes out quoted, and an import takes the quote off.
                "email": _guard_formula(row.email),
                "name": _guard_formula(row.name or ""),
                "status": row.status.value,
                "language": row.language,
                "topics": ";".join(topics[row.id]),
                "frequency": row.frequency.value,
                "created_at": _iso(row.created_at),
                "confirmed_at": _iso(row.confirmed_at),
                "unsubscribed_at": _iso(row.unsubscribed_at),
                "consent_source": row.consent_source.value,
            }
        last_id = ids[-1]


def write_csv(rows: Iterable[dict[str, str]], stream: TextIO) -> int:
    """Write rows of EXPORT_COLUMNS with a header; returns how many rows."""
    writer = csv.DictWriter(stream, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    return count


def _guard_formula(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _unguard_formula(value: str) -> str:
    """What _guard_formula wrote, as it was: an export imports back unchanged."""
    return value[1:] if len(value) > 1 and value[0] == "'" and value[1] in _FORMULA_START else value


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""
