"""/dev/mailbox: the local SMTP sink's inbox, registered only under `make run`."""

from __future__ import annotations

import mailbox
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, render_template

bp = Blueprint("dev", __name__, url_prefix="/dev")


@dataclass(frozen=True)
class MailSummary:
    key: str
    subject: str
    to: str
    date: str
    sort_key: float


def _maildir() -> mailbox.Maildir:
    path = Path(current_app.extensions["pressroom.settings"].dev_mailbox_dir)
    return mailbox.Maildir(path, factory=None, create=True)


def _parse(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _load(key: str) -> EmailMessage:
    box = _maildir()
    try:
        return _parse(box.get_bytes(key))
    except KeyError:
        abort(404)


@bp.get("/mailbox")
def inbox() -> str:
    box = _maildir()
    summaries = []
    for key in box.iterkeys():
        message = _parse(box.get_bytes(key))
        try:
            when = parsedate_to_datetime(str(message["Date"]))
            stamp = when.timestamp()
        except (TypeError, ValueError):
            stamp = 0.0
        summaries.append(
            MailSummary(
                key=key,
                subject=str(message["Subject"] or ""),
                to=str(message["To"] or ""),
                date=str(message["Date"] or ""),
                sort_key=stamp,
            )
        )
    summaries.sort(key=lambda m: m.sort_key, reverse=True)
    return render_template("dev/mailbox.html", messages=summaries[:200], total=len(summaries))


@bp.get("/mailbox/<key>")
def show(key: str) -> str:
    message = _load(key)
    text_part = message.get_body(preferencelist=("plain",))
    text = text_part.get_content() if text_part is not None else ""
    headers = [(name, str(value)) for name, value in message.items()]
    return render_template("dev/message.html", key=key, headers=headers, text=text)


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
