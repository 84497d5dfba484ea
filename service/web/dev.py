"""/dev/mailbox: the local SMTP sink's inbox, registered only under `make run`.

Each message can be read (its headers and text), seen as the reader's mail program shows its
HTML, seen as its source (the bytes the SMTP sink received, as they are kept in the Maildir),
and downloaded as a .eml file (RFC 5322 text, served as message/rfc822, RFC 2046 §5.2.1) that
any mail program opens.
"""

from __future__ import annotations

import mailbox
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

from flask import Blueprint, Response, abort, render_template

from service.app_state import settings
from service.web.l10n import format_datetime

bp = Blueprint("dev", __name__, url_prefix="/dev")

_NOT_IN_FILENAME = re.compile(r"[^A-Za-z0-9]+")
MAX_FILENAME_STEM = 60


@dataclass(frozen=True)
class MailSummary:
    key: str
    subject: str
    to: str
    date: str
    sort_key: float


def maildir_path() -> Path:
    """The sink's Maildir (`instance/mailbox` under `make run`: PRESSROOM_DEV_MAILBOX)."""
    return Path(settings().dev_mailbox_dir)


def _maildir() -> mailbox.Maildir:
    return mailbox.Maildir(maildir_path(), factory=None, create=True)


def _parse(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _raw(key: str) -> bytes:
    """The message's bytes as the Maildir keeps them; 404 for a key it does not hold."""
    try:
        return _maildir().get_bytes(key)
    except KeyError:
        abort(404)


def _load(key: str) -> EmailMessage:
    return _parse(_raw(key))


def _sent_at(message: EmailMessage) -> datetime | None:
    try:
        return parsedate_to_datetime(str(message["Date"]))
    except (TypeError, ValueError):
        return None


def _shown_date(when: datetime | None, header: str) -> str:
    """The Date header in the page's language, on the desk's clock; as written when unreadable."""
    if when is None or when.tzinfo is None:
        return header
    return format_datetime(when, "medium")


@bp.get("/mailbox")
def inbox() -> str:
    box = _maildir()
    summaries = []
    for key in box.iterkeys():
        message = _parse(box.get_bytes(key))
        when = _sent_at(message)
        summaries.append(
            MailSummary(
                key=key,
                subject=str(message["Subject"] or ""),
                to=str(message["To"] or ""),
                date=_shown_date(when, str(message["Date"] or "")),
                sort_key=when.timestamp() if when is not None and when.tzinfo else 0.0,
            )
        )
    summaries.sort(key=lambda m: m.sort_key, reverse=True)
    return render_template(
        "dev/mailbox.html",
        messages=summaries[:200],
        total=len(summaries),
        maildir=str(maildir_path()),
    )


@bp.get("/mailbox/<key>")
def show(key: str) -> str:
    message = _load(key)
    text_part = message.get_body(preferencelist=("plain",))
    text = text_part.get_content() if text_part is not None else ""
    headers = [(name, str(value)) for name, value in message.items()]
    return render_template(
        "dev/message.html",
        key=key,
        headers=headers,
        text=text,
        has_html=message.get_body(preferencelist=("html",)) is not None,
        filename=eml_filename(message),
    )


@bp.get("/mailbox/<key>/html")
def show_html(key: str) -> Response:
    html_part = _load(key).get_body(preferencelist=("html",))
    if html_part is None:
        abort(404)
    response = Response(html_part.get_content(), mimetype="text/html")
    # The mail's own HTML: no scripts, no framing, links open as a reader would follow them.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; "
        "form-action 'self'; frame-ancestors 'none'"
    )
    return response


@bp.get("/mailbox/<key>/source")
def source(key: str) -> str:
    """The message's source on a page. 8-bit text (SMTPUTF8, 8BITMIME) is read as UTF-8, and
    any byte that is not UTF-8 shows as U+FFFD; the .eml download has the bytes exactly."""
    raw = _raw(key)
    message = _parse(raw)
    return render_template(
        "dev/source.html",
        key=key,
        subject=str(message["Subject"] or ""),
        source=raw.decode("utf-8", errors="replace"),
        size=len(raw),
        filename=eml_filename(message),
    )


@bp.get("/mailbox/<key>.eml")
def download(key: str) -> Response:
    """The message as a file: its bytes exactly, message/rfc822, as an attachment named
    after its date and subject (RFC 6266; Werkzeug adds filename* for any non-ASCII)."""
    raw = _raw(key)
    response = Response(raw, mimetype="message/rfc822")
    name = eml_filename(_parse(raw))
    response.headers.set("Content-Disposition", "attachment", filename=name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def eml_filename(message: EmailMessage) -> str:
    """A file name any system takes: `YYYYMMDD-HHMMSS-subject-words.eml`, ASCII letters,
    digits and hyphens only (accents dropped, æ ø å spelt ae o a), at most 60 before `.eml`;
    `message.eml` when the subject leaves nothing."""
    subject = str(message["Subject"] or "")
    spelt = subject.translate(str.maketrans({"æ": "ae", "Æ": "Ae", "ø": "o", "Ø": "O"}))
    ascii_subject = unicodedata.normalize("NFKD", spelt).encode("ascii", "ignore").decode()
    words = _NOT_IN_FILENAME.sub("-", ascii_subject).strip("-")
    when = _sent_at(message)
    stamp = when.strftime("%Y%m%d-%H%M%S") if when is not None else ""
    stem = "-".join(part for part in (stamp, words) if part)[:MAX_FILENAME_STEM].strip("-")
    return f"{stem or 'message'}.eml"
