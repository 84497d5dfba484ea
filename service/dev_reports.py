"""What the local sink of `make run` plays at: a mail system that bounces and a mailbox
provider whose user complains, so that a newcomer sees the whole loop on the desk.

Mail the sink takes for an address at bounce.example comes back as a DSN (RFC 3464, "no such
user", 5.1.1), and for an address at complaint.example as an ARF complaint (RFC 5965,
abuse), each sent by SMTP to the message's envelope sender (its VERP address) at the bounce
server that `make run` starts. Both domains are reserved (RFC 2606): no real mailbox.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from email.utils import format_datetime, make_msgid

from service.db import utcnow

log = logging.getLogger(__name__)

BOUNCING_DOMAIN = "bounce.example"
COMPLAINING_DOMAIN = "complaint.example"


def report_for(recipient: str, envelope_sender: str, original: bytes) -> bytes | None:
    """The report the pretend mail system sends for `original`, or None for a mailbox that
    takes it."""
    domain = recipient.rpartition("@")[2].lower()
    if domain == BOUNCING_DOMAIN:
        return _dsn(recipient, envelope_sender, original)
    if domain == COMPLAINING_DOMAIN:
        return _arf(recipient, envelope_sender, original)
    return None


class ReportSender:
    """Sends reports to the bounce server at `host:port`, each in a thread of its own: the
    sink answers the message first, as a real relay does."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def __call__(self, recipients: list[str], envelope_sender: str, original: bytes) -> None:
        for recipient in recipients:
            report = report_for(recipient, envelope_sender, original)
            if report is not None and envelope_sender:
                threading.Thread(
                    target=self._send, args=(envelope_sender, report), daemon=True
                ).start()

    def _send(self, to: str, report: bytes) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=10) as client:
                client.sendmail("", [to], report)
        except (OSError, smtplib.SMTPException) as error:
            log.warning("the pretend report was not delivered: %s", type(error).__name__)


def _headers(original: bytes) -> str:
    head = original.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    return head.decode("utf-8", "replace").replace("\r\n", "\n")


def _dsn(recipient: str, envelope_sender: str, original: bytes) -> bytes:
    boundary = make_msgid("dsn")[1:-1]
    text = f"""From: MAILER-DAEMON@{BOUNCING_DOMAIN} (Mail Delivery System)
To: {envelope_sender}
Subject: Undelivered Mail Returned to Sender
Date: {format_datetime(utcnow())}
Message-ID: {make_msgid("dsn", BOUNCING_DOMAIN)}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"

--{boundary}
Content-Type: text/plain; charset=us-ascii

The local sink of `make run` pretends that <{recipient}> does not exist.

--{boundary}
Content-Type: message/delivery-status

Reporting-MTA: dns; {BOUNCING_DOMAIN}

Final-Recipient: rfc822; {recipient}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown

--{boundary}
Content-Type: text/rfc822-headers

{_headers(original)}
--{boundary}--
"""
    return text.replace("\n", "\r\n").encode("utf-8")


def _arf(recipient: str, envelope_sender: str, original: bytes) -> bytes:
    boundary = make_msgid("arf")[1:-1]
    text = f"""From: feedback-loop@{COMPLAINING_DOMAIN}
To: {envelope_sender}
Subject: Complaint about a message from you
Date: {format_datetime(utcnow())}
Message-ID: {make_msgid("arf", COMPLAINING_DOMAIN)}
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="{boundary}"

--{boundary}
Content-Type: text/plain; charset=us-ascii

The local sink of `make run` pretends that {recipient} marked this message as spam.

--{boundary}
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: pressroom-make-run/1
Version: 1
Original-Mail-From: <{envelope_sender}>
Original-Rcpt-To: <{recipient}>

--{boundary}
Content-Type: text/rfc822-headers

{_headers(original)}
--{boundary}--
"""
    return text.replace("\n", "\r\n").encode("utf-8")
