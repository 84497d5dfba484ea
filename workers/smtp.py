"""SMTP transport configured by SMTP_URL, behind a small Mailer protocol."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class TransientSendError(Exception):
    """The server or the network said 'not now' (4xx, connection trouble): try again later."""


class PermanentSendError(Exception):
    """The server refused this message for good (5xx)."""


@dataclass(frozen=True)
class SmtpSettings:
    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str) -> SmtpSettings:
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS:
            raise ValueError(f"unsupported SMTP_URL scheme {parts.scheme!r}")
        return cls(
            scheme=parts.scheme,
            host=parts.hostname or "localhost",
            port=parts.port or DEFAULT_PORTS[parts.scheme],
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def __repr__(self) -> str:  # never show the password
        return f"SmtpSettings({self.scheme}://{self.host}:{self.port}, user={self.username!r})"


class SmtpMailer:
    """Opens one connection, sends, and keeps it for the next message until closed."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._connection: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context()
        connection: smtplib.SMTP
        if s.scheme == "smtps":
            connection = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
        else:
            connection = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            if s.scheme == "smtp+starttls":
                connection.starttls(context=context)
        if s.username:
            connection.login(s.username, s.password or "")
        return connection

    def send(self, message: EmailMessage) -> None:
        try:
            if self._connection is None:
                self._connection = self._connect()
            self._connection.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            self._raise_for(min(codes) if codes else 550, str(error.recipients))
        except smtplib.SMTPResponseException as error:
            self.close()
            self._raise_for(error.smtp_code, error.smtp_error.decode(errors="replace"))
        except (smtplib.SMTPException, OSError) as error:
            self.close()
            raise TransientSendError(
                f"SMTP connection failed: {error.__class__.__name__}"
            ) from None

    @staticmethod
    def _raise_for(code: int, detail: str) -> None:
        if 400 <= code < 500:
            raise TransientSendError(f"{code} {detail}")
        raise PermanentSendError(f"{code} {detail}")

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.quit()
            except (smtplib.SMTPException, OSError):
                self._connection.close()
            self._connection = None

    def __enter__(self) -> SmtpMailer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
