"""Rendering emails from templates/email/ in the reader's language, and composing MIME."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import css_inline
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from service.domain import mail_headers, mime, plain_text
from service.domain.addresses import display_address
from service.locales import LANGUAGES

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EMAIL_TEMPLATES_DIR = PROJECT_ROOT / "templates" / "email"
TRANSLATIONS_DIR = Path(__file__).resolve().parents[1] / "translations"
_BLANKS = re.compile(r"[ \t\r\n\f\v\x85\u2028\u2029]+")


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class EmailRenderer:
    """One Jinja environment per language, each with its gettext catalog installed."""

    def __init__(
        self,
        templates_dir: Path = EMAIL_TEMPLATES_DIR,
        translations_dir: Path = TRANSLATIONS_DIR,
    ) -> None:
        self._templates_dir = templates_dir
        self._translations_dir = translations_dir
        self._inliner = css_inline.CSSInliner(keep_style_tags=False)
        self._environments: dict[str, Environment] = {}

    def _environment(self, language: str) -> Environment:
        if language not in self._environments:
            self._environments[language] = self._build_environment(language)
        return self._environments[language]

    def _build_environment(self, language: str) -> Environment:
        env = Environment(
            loader=FileSystemLoader(self._templates_dir),
            autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
            undefined=StrictUndefined,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        env.filters["address"] = display_address
        translations = Translations.load(str(self._translations_dir), [language], domain="messages")
        env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
        # `{% filter wrap %}`: a text part's prose wrapped as plain_text wraps a release's.
        env.filters["wrap"] = plain_text.wrap_text
        return env

    def render(self, name: str, language: str, **context: Any) -> RenderedEmail:
        if language not in LANGUAGES:
            raise ValueError(f"no email language {language!r}")
        env = self._environment(language)
        context.setdefault("language", language)
        subject = env.get_template(f"{name}.subject.txt").render(**context)
        text = env.get_template(f"{name}.txt").render(**context)
        html = env.get_template(f"{name}.html").render(**context)
        return RenderedEmail(
            # One line, whatever the template holds; only line breaks and ASCII blanks fold
            # into a space (str.split() would also eat a title's no-break spaces).
            subject=_BLANKS.sub(" ", subject).strip(" "),
            text=text.strip() + "\n",
            html=self._inliner.inline(html),
        )


@dataclass(frozen=True)
class OutgoingMail:
    """One message as it goes to the SMTP server: envelope and bytes (CRLF line ends)."""

    sender: str  # the envelope's MAIL FROM addr-spec
    recipient: str
    data: bytes


def compose(
    rendered: RenderedEmail,
    *,
    sender: str,
    recipient: str,
    date: datetime,
    message_id: str | None = None,
    headers: Sequence[bytes] = (),
) -> OutgoingMail:
    """A multipart/alternative message, text first, every header line written by
    mail_headers (the only door: no value passes through EmailMessage's header registry,
    which decodes encoded words in the str it is given).

    `sender`: `Name <addr>` or `addr` (MAIL_FROM); `recipient`: a plain addr-spec;
    `headers`: further header lines, each written by a mail_headers function;
    `message_id`: None gives the message an ID of its own (mail_headers.new_msg_id).
    Raises mail_headers.HeaderError for any value that cannot be written safely.
    """
    box = mail_headers.parse_mailbox(sender)
    boundary = mime.new_boundary()
    head = [
        mail_headers.mailbox("From", box),
        mail_headers.address("To", recipient),
        mail_headers.unstructured("Subject", rendered.subject),
        mail_headers.date("Date", date),
        mail_headers.message_id("Message-ID", message_id or mail_headers.new_msg_id(box.domain)),
        *headers,
        mime.alternative_headers(boundary),
    ]
    data = b"".join(head) + b"\r\n" + mime.alternative_body(boundary, rendered.text, rendered.html)
    return OutgoingMail(sender=box.addr_spec, recipient=recipient, data=data)
