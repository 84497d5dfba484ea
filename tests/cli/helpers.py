"""Building blocks for CLI tests (and the lists both import doors, CLI and desk, are fed):
running `flask ...` commands, asking the database what a command did, spreadsheet files."""

from __future__ import annotations

import codecs
import csv
import io

import pytest
from click.testing import Result
from flask import Flask

from service.app_state import session_scope
from service.db import utcnow
from service.domain import publishers


def flask(app: Flask, *args: str, input: str | None = None) -> Result:
    return app.test_cli_runner().invoke(args=list(args), input=input)


def can_log_in(app: Flask, email: str, password: str) -> bool:
    with app.app_context(), session_scope() as session:
        return publishers.authenticate(session, email, password, now=utcnow()) is not None


def token_works(app: Flask, token: str) -> bool:
    with app.app_context(), session_scope() as session:
        return publishers.publisher_for_token(session, token, now=utcnow()) is not None


# (bytes, id): one list as spreadsheets write it; every one reads as the same three readers.
_ROWS = [
    ("email", "name", "language"),
    ("kari@example.no", "Kari\nNordmann", "nb"),  # a cell with a line break (Alt+Enter)
    ("ola@example.no", 'Nordmann; Ola, "jr"', "en"),
    ("per@example.no", "", ""),
]


def _spreadsheet(delimiter: str, line_end: str, encoding: str) -> bytes:
    buffer = io.StringIO()
    # Python 3.11's writer quotes a line break only when it is in `lineterminator`.
    quoting = csv.QUOTE_ALL if line_end == "\r" else csv.QUOTE_MINIMAL
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=line_end, quoting=quoting)
    writer.writerows(_ROWS)
    return buffer.getvalue().encode(encoding)


SPREADSHEET_FILES = [
    pytest.param(_spreadsheet(",", "\r\n", "utf-8"), id="rfc4180-crlf"),
    pytest.param(_spreadsheet(",", "\n", "utf-8"), id="lf"),
    pytest.param(_spreadsheet(",", "\r", "utf-8"), id="cr-only"),
    pytest.param(_spreadsheet(",", "\r\n", "utf-8-sig"), id="excel-csv-utf8-bom"),
    pytest.param(_spreadsheet(";", "\r\n", "utf-8-sig"), id="excel-norwegian-semicolons"),
    pytest.param(_spreadsheet("\t", "\r\n", "utf-16"), id="excel-unicode-text-utf16-tabs"),
    pytest.param(_spreadsheet("\t", "\r\n", "utf-16-be"), id="utf16-be-without-bom"),
    pytest.param(
        codecs.BOM_UTF16_BE + _spreadsheet(";", "\n", "utf-16-be"), id="utf16-be-bom-semicolons"
    ),
    pytest.param(_spreadsheet("\t", "\n", "utf-8"), id="tabs"),
    pytest.param(b"sep=;\r\n" + _spreadsheet(";", "\r\n", "utf-8"), id="excel-sep-line"),
]

SPREADSHEET_READERS = {
    "kari@example.no": ("Kari Nordmann", "nb"),
    "ola@example.no": ('Nordmann; Ola, "jr"', "en"),
    "per@example.no": (None, "nb"),
}

MULTI_LINE_THEN_BAD = (
    "email,name,topics\r\n"  # 1
    "one@example.no,One,\r\n"  # 2
    'two@example.no,"Two\nlines","culture\nsport"\r\n'  # 3-5
    "not-an-address,Bad,\r\n"  # 6
    'three@example.no,"Three\r\nlines\r\nhere",\r\n'  # 7-9
    "four@example.no,,not a topic!\r\n"  # 10
    "five@example.no,Five,\r\n"  # 11
)
