"""/dev/mailbox (under `make run`): every message the SMTP sink kept can be read, seen as its
source and downloaded as a .eml file; the pages speak the reader's language (issue 10, item 18)."""

from __future__ import annotations

import mailbox
import smtplib
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service import create_app
from service.app_state import get_database
from service.mailsink import MailSink, SinkHandler
from tests.conftest import make_settings

SUBJECT = 'Re: "Bekreft" / ../../etc/passwd; æøå Ünïcode\tX'


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    return tmp_path / "mailbox"


@pytest.fixture
def dev_app(database_url: str, redis_url: str, maildir: Path) -> Iterator[Flask]:
    sink = MailSink(SinkHandler(maildir)).start()
    application = create_app(
        make_settings(database_url, redis_url, sink.url, dev_mailbox_dir=str(maildir))
    )
    application.extensions["test.sink"] = sink
    yield application
    sink.stop()
    with application.app_context():
        get_database().dispose()


def send_through_the_sink(app: Flask) -> EmailMessage:
    """A message with a non-ASCII subject (RFC 2047) and both parts, as the app writes them,
    through the real SMTP sink."""
    message = EmailMessage()
    message["From"] = "Pressroom <noreply@press.example>"
    message["To"] = "kari@mail.example"
    message["Subject"] = SUBJECT
    message["Date"] = format_datetime(datetime(2026, 11, 30, 12, 5, 9, tzinfo=UTC))
    message["Message-ID"] = "<one@press.example>"
    message.set_content("Hei Kari,\n\nbekreft her: http://press.example/confirm/abc\n")
    message.add_alternative("<p>Hei <b>Kari</b></p>", subtype="html")
    sink: MailSink = app.extensions["test.sink"]
    with smtplib.SMTP("127.0.0.1", sink.port) as smtp:
        smtp.send_message(message)
    return message


def only_key(maildir: Path) -> str:
    keys = list(mailbox.Maildir(maildir, create=False).iterkeys())
    assert len(keys) == 1
    return keys[0]


def test_a_message_downloads_as_its_exact_bytes_in_a_safe_eml_file(
    dev_app: Flask, maildir: Path
) -> None:
    send_through_the_sink(dev_app)
    key = only_key(maildir)
    client = dev_app.test_client()
    answer = client.get(f"/dev/mailbox/{key}.eml")
    assert answer.status_code == 200
    assert answer.mimetype == "message/rfc822"
    assert answer.data == mailbox.Maildir(maildir).get_bytes(key)
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    disposition = answer.headers["Content-Disposition"]
    assert disposition == (
        "attachment; filename=20261130-120509-Re-Bekreft-etc-passwd-aeoa-Unicode-X.eml"
    )


def test_the_source_shows_the_raw_message(dev_app: Flask, maildir: Path) -> None:
    send_through_the_sink(dev_app)
    key = only_key(maildir)
    page = dev_app.test_client().get(f"/dev/mailbox/{key}/source?lang=en")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "Subject: Re: &#34;Bekreft&#34;" in page.text
    assert "=?utf-8?b?" in page.text  # the encoded header, as sent, not decoded
    assert "Content-Type: multipart/alternative;" in page.text
    assert "&lt;p&gt;Hei &lt;b&gt;Kari&lt;/b&gt;&lt;/p&gt;" in page.text  # shown, never run
    assert f'href="/dev/mailbox/{key}.eml"' in page.text


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("en", ["Mailbox", "local SMTP sink, 1 message", "Source", "Download (.eml)", "Maildir"]),
        ("nb", ["Postkasse", "lokal SMTP-mottaker, 1 melding", "Kilde", "Last ned (.eml)"]),
    ],
)
def test_the_mailbox_speaks_the_page_language_and_links_source_and_download(
    dev_app: Flask, maildir: Path, lang: str, words: list[str]
) -> None:
    send_through_the_sink(dev_app)
    key = only_key(maildir)
    client = dev_app.test_client()
    inbox = client.get(f"/dev/mailbox?lang={lang}")
    assert inbox.status_code == 200
    for word in [*words, str(maildir)]:
        assert word in inbox.text, word
    assert f'href="/dev/mailbox/{key}/source"' in inbox.text
    shown = client.get(f"/dev/mailbox/{key}")
    assert shown.status_code == 200
    for word in words[2:4]:  # Source, Download
        assert word in shown.text, word


def test_an_unknown_message_is_a_404_everywhere(dev_app: Flask) -> None:
    client = dev_app.test_client()
    for path in ("nope", "nope.eml", "nope/source", "nope/html", "..%2F..%2Fsecret_key.eml"):
        assert client.get(f"/dev/mailbox/{path}").status_code == 404, path


def test_without_make_run_there_is_no_mailbox(client: FlaskClient) -> None:
    assert client.get("/dev/mailbox").status_code == 404
