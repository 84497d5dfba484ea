"""Rendering emails from templates/email/ in the reader's language, and composing MIME."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import css_inline
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from service.domain.subscriptions import LANGUAGES

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EMAIL_TEMPLATES_DIR = PROJECT_ROOT / "templates" / "email"
TRANSLATIONS_DIR = Path(__file__).resolve().parents[1] / "translations"


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
        translations = Translations.load(str(self._translations_dir), [language], domain="messages")
        env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
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
            subject=" ".join(subject.split()),  # one line, whatever the template holds
            text=text.strip() + "\n",
            html=self._inliner.inline(html),
        )


def compose(
    rendered: RenderedEmail,
    *,
    sender: str,
    recipient: str,
    date: datetime,
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    """A multipart/alternative message, text first, with header values that cannot be split."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = Address(addr_spec=recipient)
    message["Subject"] = rendered.subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id or make_msgid(domain=_domain_of(sender))
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(rendered.text, subtype="plain", charset="utf-8")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8")
    return message


def _domain_of(sender: str) -> str:
    address = sender.rsplit("<", 1)[-1].rstrip(">").strip()
    return address.rsplit("@", 1)[-1] or "localhost"
