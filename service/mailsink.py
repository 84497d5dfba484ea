"""A local SMTP sink (aiosmtpd) for `make run` and the tests: it accepts mail and keeps it."""

from __future__ import annotations

import mailbox
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from service.embedded_redis import free_port


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    recipients: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class SinkHandler:
    """Keeps every message in memory and, when given a folder, in a Maildir too. `on_message`
    (recipients, envelope sender, message) is called after each is kept: `make run` answers
    some with a bounce or a complaint (dev_reports.ReportSender)."""

    def __init__(
        self,
        maildir: Path | None = None,
        on_message: Callable[[list[str], str, bytes], None] | None = None,
    ) -> None:
        self.received: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._maildir = mailbox.Maildir(maildir, create=True) if maildir else None
        self._on_message = on_message

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        mail = ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(raw))
        with self._changed:
            self.received.append(mail)
            if self._maildir is not None:
                self._maildir.add(mail.raw)
            self._changed.notify_all()
        if self._on_message is not None:
            self._on_message(list(mail.recipients), mail.mail_from, mail.raw)
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 15.0) -> list[ReceivedMail]:
        """Block until at least `count` messages arrived; returns them (raises on time-out)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.received) >= count, timeout=timeout):
                raise TimeoutError(
                    f"{len(self.received)} of {count} messages arrived in {timeout}s"
                )
            return list(self.received)

    def clear(self) -> None:
        with self._lock:
            self.received.clear()


class MailSink:
    """An SMTP server on 127.0.0.1 in a background thread."""

    def __init__(
        self, handler: SinkHandler | None = None, port: int | None = None, **smtp_options: Any
    ) -> None:
        """`smtp_options` go to aiosmtpd: ssl_context (SMTPS), tls_context (STARTTLS),
        authenticator, auth_require_tls ..."""
        self.handler = handler or SinkHandler()
        # Like today's usual relays (Postfix, Exim, Gmail): addresses beyond ASCII go through.
        smtp_options.setdefault("enable_SMTPUTF8", True)
        self.port = port or free_port()
        self._controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, data_size_limit=None, **smtp_options
        )

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> MailSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
