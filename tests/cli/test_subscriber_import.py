"""`flask subscribers import` and `export`, through Flask's CLI runner on the real database."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import redis
from click.testing import Result
from flask import Flask
from sqlalchemy import delete, func, select

from service.app_state import session_scope
from service.db import utcnow
from service.domain import imports, subscriptions
from service.domain.imports import ImportOptions
from service.domain.subscriptions import Signup
from service.models import (
    ConsentSource,
    Subscriber,
    SubscriberStatus,
    SubscriberTopic,
    SuppressionReason,
)
from tests.cli.helpers import MULTI_LINE_THEN_BAD, SPREADSHEET_FILES, SPREADSHEET_READERS


@dataclass(frozen=True)
class Row:
    name: str | None
    status: SubscriberStatus
    language: str
    topics: tuple[str, ...]
    consent_source: ConsentSource
    consent_text_version: str
    consent_note: str | None
    confirmed_at: datetime | None
    frequency: str = "immediately"


def flask(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=list(args))


def csv_file(tmp_path: Path, text: str, *, bom: bool = False, name: str = "list.csv") -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def import_file(app: Flask, path: Path, *options: str) -> Result:
    result = flask(app, "subscribers", "import", str(path), *options)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


def stored(app: Flask) -> dict[str, Row]:
    with app.app_context(), session_scope() as session:
        return {
            s.email: Row(
                s.name,
                s.status,
                s.language,
                tuple(s.topics),
                s.consent_source,
                s.consent_text_version,
                s.consent_note,
                s.confirmed_at,
                s.frequency.value,
            )
            for s in session.scalars(select(Subscriber))
        }


def sign_up(app: Flask, email: str, *, confirm: bool, language: str, topics: list[str]) -> None:
    """A reader who came through the form, confirmed or not."""
    with app.app_context(), session_scope() as session:
        signup = Signup(email, language, topics, ConsentSource.FORM, "form-v1", name="Form Reader")
        subscriptions.subscribe(session, signup, now=utcnow())
        if confirm:
            subscriber = subscriptions.find_by_email(session, email)
            assert subscriber is not None
            token = subscriptions.confirm_token(app.extensions["pressroom.signer"], subscriber)
            subscriptions.confirm(session, app.extensions["pressroom.signer"], token, now=utcnow())


def test_bom_semicolons_topics_and_language_make_pending_rows_and_no_mail(
    app: Flask, tmp_path: Path
) -> None:
    path = csv_file(
        tmp_path,
        "Email;Name;Topics;Language\r\n"
        'ola@example.no;Ola Nordmann;"culture;sport";en\r\n'
        "KARI@Example.NO;Kari Ærlig-Østby;;\r\n"
        "per@blåbær.no;;economy;NB\r\n",
        bom=True,
    )
    result = import_file(app, path, "--consent-note", "Signed up at our stand, Arendalsuka 2026")
    assert "imported 3, exists 0, suppressed 0, rejected 0" in result.stdout
    assert "no confirmation email" in result.stdout
    rows = stored(app)
    assert set(rows) == {"ola@example.no", "kari@example.no", "per@xn--blbr-roah.no"}
    ola, kari, per = rows["ola@example.no"], rows["kari@example.no"], rows["per@xn--blbr-roah.no"]
    assert (ola.name, ola.language, ola.topics) == ("Ola Nordmann", "en", ("culture", "sport"))
    assert (kari.name, kari.language, kari.topics) == ("Kari Ærlig-Østby", "nb", ())
    assert (per.name, per.language, per.topics) == (None, "nb", ("economy",))
    settings = app.extensions["pressroom.settings"]
    for row in rows.values():
        assert row.status is SubscriberStatus.PENDING
        assert row.confirmed_at is None
        assert row.consent_source is ConsentSource.IMPORT
        assert row.consent_text_version == settings.consent_text_version
        assert row.consent_note == "Signed up at our stand, Arendalsuka 2026"
    # The import sends nothing and queues nothing.
    queue = redis.Redis.from_url(app.extensions["pressroom.redis_url"])
    try:
        assert queue.llen(settings.task_queue) == 0
    finally:
        queue.close()


def test_confirmed_import(app: Flask, tmp_path: Path) -> None:
    before = utcnow()
    path = csv_file(tmp_path, "email,language\nola@example.no,en\nkari@example.no,\n")
    result = import_file(app, path, "--confirmed", "--consent-note", "Paper forms 2025")
    assert "imported 2" in result.stdout
    assert "confirmed" in result.stdout
    for row in stored(app).values():
        assert row.status is SubscriberStatus.CONFIRMED
        assert row.confirmed_at is not None and row.confirmed_at >= before.replace(microsecond=0)
        assert row.consent_note == "Paper forms 2025"


def test_bad_rows_are_reported_by_line_and_good_rows_kept(app: Flask, tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        "email,name,language,topics\n"  # line 1
        "good1@example.no,Good One,,\n"  # 2
        "not-an-address,Bad,,\n"  # 3
        "\n"  # 4: blank, skipped silently
        "lang@example.no,,de,\n"  # 5
        "topic@example.no,,,Not A Topic!\n"  # 6
        "two@example.no; three@example.no,,,\n"  # 7
        "good2@example.no,Good Two,en,culture\n"  # 8
        "extra@example.no,x,nb,,surplus\n"  # 9
        ",no address,,\n"  # 10
        "good3@example.no,,,\n",  # 11
    )
    result = import_file(app, path)
    assert "imported 3, exists 0, suppressed 0, rejected 6" in result.stdout
    problems = result.stderr.splitlines()
    assert [line.split(":")[0] for line in problems] == [
        "line 3",
        "line 5",
        "line 6",
        "line 7",
        "line 9",
        "line 10",
    ]
    assert all(": rejected" in line for line in problems)
    assert "An email address needs an @" in problems[0]
    assert "Language must be one of" in problems[1]
    assert "topic" in problems[2]
    assert "one plain email address" in problems[3]
    assert "fields" in problems[4]
    assert "Enter an email address" in problems[5]
    assert set(stored(app)) == {"good1@example.no", "good2@example.no", "good3@example.no"}


def test_a_stray_quote_is_reported_with_the_lines_it_swallowed(app: Flask, tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        'email,name\nfirst@example.no,"Unclosed\nlost@example.no,x\nlast@example.no,"\n'
        "after@example.no,After\n",
    )
    result = import_file(app, path)
    assert "line 2: rejected" in result.stderr
    assert "line 2 to line 4" in result.stderr
    assert set(stored(app)) == {"after@example.no"}


def test_a_quoted_cell_with_a_line_break_is_one_reader(app: Flask, tmp_path: Path) -> None:
    """The issue's example (issue 10, item 5): Excel and Google Sheets write this."""
    path = tmp_path / "list.csv"
    path.write_bytes(b'email,name\r\nkari@example.com,"Kari\nNordmann"\r\n')
    result = import_file(app, path)
    assert "imported 1, exists 0, suppressed 0, rejected 0" in result.stdout
    assert result.stderr == ""
    assert stored(app)["kari@example.com"].name == "Kari Nordmann"


@pytest.mark.parametrize("content", SPREADSHEET_FILES)
def test_a_file_a_spreadsheet_wrote_is_read_as_it_meant(
    app: Flask, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(content)
    result = import_file(app, path)
    assert "imported 3, exists 0, suppressed 0, rejected 0" in result.stdout, result.output
    assert result.stderr == ""
    rows = stored(app)
    assert {email: (row.name, row.language) for email, row in rows.items()} == SPREADSHEET_READERS


def test_lines_after_a_multi_line_cell_are_reported_by_their_physical_line(
    app: Flask, tmp_path: Path
) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(MULTI_LINE_THEN_BAD.encode())
    result = import_file(app, path)
    assert "imported 4, exists 0, suppressed 0, rejected 2" in result.stdout
    assert [line.split(": ")[:2] for line in result.stderr.splitlines()] == [
        ["line 6", "rejected"],
        ["line 10", "rejected"],
    ]
    with_hint = tmp_path / "hinted.csv"
    with_hint.write_bytes(b"sep=,\r\n" + MULTI_LINE_THEN_BAD.replace("@", "+2@").encode())
    again = import_file(app, with_hint)
    assert [line.split(": ")[:2] for line in again.stderr.splitlines()] == [
        ["line 7", "rejected"],
        ["line 11", "rejected"],
    ]
    rows = stored(app)
    assert rows["two@example.no"].name == "Two lines"
    assert rows["two@example.no"].topics == ("culture", "sport")
    assert rows["three@example.no"].name == "Three lines here"


def test_a_utf16_file_that_breaks_off_is_refused_whole(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    good = "email\r\nola@example.no\r\n".encode("utf-16")
    path.write_bytes(good + "kari@example.no\r\n".encode("utf-16-le") + b"\x00\xd8")
    result = flask(app, "subscribers", "import", str(path))
    assert result.exit_code == 1, result.output
    assert "not (line 4)" in result.stderr
    assert stored(app) == {}


def test_suppressed_addresses_are_skipped(app: Flask, tmp_path: Path) -> None:
    with app.app_context(), session_scope() as session:
        subscriptions.suppress(session, "erased@example.no", SuppressionReason.ERASED, now=utcnow())
    path = csv_file(tmp_path, "email\nkept@example.no\nErased@Example.no\n")
    result = import_file(app, path, "--confirmed")
    assert "imported 1, exists 0, suppressed 1, rejected 0" in result.stdout
    assert "line 3: suppressed" in result.stderr
    assert set(stored(app)) == {"kept@example.no"}


def test_existing_addresses_are_left_as_they_are(app: Flask, tmp_path: Path) -> None:
    sign_up(app, "confirmed@example.no", confirm=True, language="en", topics=["culture"])
    sign_up(app, "pending@example.no", confirm=False, language="en", topics=[])
    with app.app_context(), session_scope() as session:
        subscriber = subscriptions.find_by_email(session, "pending@example.no")
        assert subscriber is not None
        subscriptions.unsubscribe_subscriber(session, subscriber, now=utcnow())
    before = stored(app)
    path = csv_file(
        tmp_path,
        "email,name,language,topics\n"
        "confirmed@example.no,New Name,nb,sport\n"
        "PENDING@example.no,New Name,nb,sport\n"
        "new@example.no,,,\n"
        "new@example.no,Again,,\n"
        "broken,,,\n",
    )
    result = import_file(app, path, "--confirmed")
    assert "imported 1, exists 3, suppressed 0, rejected 1" in result.stdout
    notes = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert [line.split(": ")[:2] for line in notes] == [
        ["line 2", "exists"],
        ["line 3", "exists"],
        ["line 5", "exists"],
        ["line 6", "rejected"],
    ]
    after = stored(app)
    assert len(after) == 3
    for email in ("confirmed@example.no", "pending@example.no"):
        assert after[email] == before[email]
    assert after["pending@example.no"].status is SubscriberStatus.UNSUBSCRIBED


def test_a_large_file_is_imported_in_chunks_and_exported_in_pages(
    app: Flask, tmp_path: Path
) -> None:
    lines = ["email,topics"] + [f"reader{i}@example.no,culture" for i in range(2500)]
    lines[2200] = "reader4@example.no,culture"  # a repeat, in a later chunk than the first
    result = import_file(app, csv_file(tmp_path, "\n".join(lines) + "\n"))
    assert "imported 2499, exists 1, suppressed 0, rejected 0" in result.stdout
    assert result.stderr.strip() == "line 2201: exists: reader4@example.no"
    with app.app_context(), session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 2499
        assert session.scalar(select(func.count()).select_from(SubscriberTopic)) == 2499
    exported = flask(app, "subscribers", "export")
    assert exported.exit_code == 0, exported.output
    emails = [row["email"] for row in csv.DictReader(io.StringIO(exported.stdout))]
    assert len(emails) == len(set(emails)) == 2499


def test_export_then_import_gives_back_the_same_readers(app: Flask, tmp_path: Path) -> None:
    path = csv_file(
        tmp_path,
        "email;name;language;topics;frequency\n"
        'ola@example.no;"Nordmann, Ola ""Olsen""";en;"culture;sport";daily\n'
        "kari@example.no;Kari Ærlig-Østby;nb;;Weekly\n"
        'formula@example.no;=HYPERLINK("http://evil.example");nb;economy\n'
        "dash@example.no;-Dash;en;\n"
        "quote@example.no;'Tis Me;en;\n"
        "plain@example.no;;;\n",
    )
    import_file(app, path, "--confirmed")
    sign_up(app, "gone@example.no", confirm=True, language="nb", topics=[])
    with app.app_context(), session_scope() as session:
        subscriber = subscriptions.find_by_email(session, "gone@example.no")
        assert subscriber is not None
        subscriptions.unsubscribe_subscriber(session, subscriber, now=utcnow())
    before = stored(app)

    out = tmp_path / "export.csv"
    written = flask(app, "subscribers", "export", str(out))
    assert written.exit_code == 0, written.output
    assert "Exported 7 subscribers" in written.stderr
    on_stdout = flask(app, "subscribers", "export")
    assert on_stdout.stdout_bytes == out.read_bytes()
    text = out.read_text(encoding="utf-8")
    assert text.splitlines()[0] == (
        "email,name,status,language,topics,frequency,created_at,confirmed_at,unsubscribed_at,"
        "consent_source"
    )
    # A spreadsheet never sees a formula: the name starts with an apostrophe in the file.
    exported = {row["email"]: row for row in csv.DictReader(io.StringIO(text))}
    assert exported["formula@example.no"]["name"].startswith("'=")
    assert exported["ola@example.no"]["topics"] == "culture;sport"
    assert exported["gone@example.no"]["status"] == "unsubscribed"

    with app.app_context(), session_scope() as session:
        session.execute(delete(Subscriber))
    result = import_file(app, out, "--confirmed")
    assert "imported 6, exists 0, suppressed 0, rejected 0, opted out 1" in result.stdout
    after = stored(app)
    assert set(after) == set(before) - {"gone@example.no"}
    for email, row in after.items():
        assert (row.name, row.language, row.topics, row.frequency) == (
            before[email].name,
            before[email].language,
            before[email].topics,
            before[email].frequency,
        ), email
    assert (after["ola@example.no"].frequency, after["kari@example.no"].frequency) == (
        "daily",
        "weekly",
    )
    assert after["formula@example.no"].name == '=HYPERLINK("http://evil.example")'
    assert after["quote@example.no"].name == "'Tis Me"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name,language\nOla,nb\n", "one of them must be email"),
        (b"", "The file is empty"),
        (
            "email,name\nola@example.no,Ola\nkari@example.no,Ærlig\n".encode("cp1252"),
            "not UTF-8 (line 3)",
        ),
    ],
    ids=["no-email-column", "empty", "windows-1252"],
)
def test_an_unreadable_file_is_refused_whole(
    app: Flask, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "list.csv"
    path.write_bytes(content)
    result = flask(app, "subscribers", "import", str(path))
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert stored(app) == {}


def test_a_too_long_consent_note_is_refused(app: Flask, tmp_path: Path) -> None:
    path = csv_file(tmp_path, "email\nola@example.no\n")
    result = flask(app, "subscribers", "import", str(path), "--consent-note", "x" * 501)
    assert result.exit_code == 1
    assert "at most 500 characters" in result.stderr
    assert stored(app) == {}


def test_the_import_hands_back_each_chunk_so_the_edge_can_commit_it(app: Flask) -> None:
    options = ImportOptions(consent_text_version="v1")
    text = io.StringIO("email\n" + "".join(f"r{i}@example.no\n" for i in range(5)) + "bad\n")
    with app.app_context(), session_scope() as session:
        parts = []
        for part in imports.import_batches(session, text, options, now=utcnow(), chunk_size=2):
            session.commit()
            parts.append((part.imported, part.rejected))
    assert parts == [(2, 0), (2, 0), (1, 1)]
    assert len(stored(app)) == 5
