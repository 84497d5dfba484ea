"""Reading a report mail: a bounce (RFC 3464 DSN, or one of the older formats MTAs still
write), a complaint (RFC 5965 ARF), or an auto-reply to ignore.

`read(data)` turns the raw bytes into a `ReportMail`: what each failed recipient's line says
(address, action, RFC 3463 status, diagnostic), where the original message can be traced
(addresses that may carry a VERP code, the original Message-ID), and the report's own id.
It judges nothing: service.domain.bounce_policy decides what each line means for the reader.

DSNs and ARF reports are read with the standard library's email package (the formats are
MIME: multipart/report, RFC 6522). Bounces that are not DSNs (qmail's QSBMF, Exchange, Exim's
older text, Yahoo's and AOL's) are read with flufl.bounce, Mailman's detectors, which find the
failed addresses; the status is then looked for in the text near each address.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from email.utils import collapse_rfc2231_value, getaddresses, parseaddr

from flufl.bounce import all_failures

MAX_REPORT_BYTES = 1024 * 1024  # a DSN quotes the original message; ours are ~10 KB
MAX_LINES = 50  # failed recipients taken from one mail: ours have one recipient a message
# RFC 3464 §2 and RFC 6533 §6 (internationalized addresses).
_DSN_TYPES = ("delivery-status", "global-delivery-status")

log = logging.getLogger(__name__)

# RFC 3463 §2: class.subject.detail, written in DSNs' Status field and in many MTAs' texts
# ("(#5.1.1)" in qmail's, "550 5.1.1 <a@b>: user unknown" in Postfix's).
_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_SMTP_CODE = re.compile(r"(?<![\d.])([45])\d\d(?![\d.])")


@dataclass(frozen=True)
class FailedRecipient:
    """One recipient's line in a report.

    `action`: "failed", "delayed" (RFC 3464 §2.3.3), or "complaint" (an ARF report);
    `status`: an RFC 3463 code such as "5.1.1", or None when the report gives none.
    """

    address: str | None
    action: str
    status: str | None
    diagnostic: str = ""


@dataclass(frozen=True)
class ReportMail:
    """What a report mail says. `recipients` is empty for anything that reports no failure
    (an auto-reply, a relayed "delivered" DSN, a stray mail); `auto_reply` tells why.

    `trace_addresses`: the addresses the report was sent to and the original's envelope
    sender (its Return-Path), any of which may carry a VERP code; `original_message_id`: the
    Message-ID of the message reported on; `report_id`: the report's own Message-ID, or
    for an ARF report the original's, so that one report read twice is known as one.
    """

    recipients: tuple[FailedRecipient, ...]
    trace_addresses: tuple[str, ...]
    original_message_id: str | None
    report_id: str | None
    auto_reply: bool = False
    # A mail system's own text (not a report, not a person's reply): one that no detector
    # could read is still a bounce when it came to a VERP address.
    from_mail_system: bool = False


def read(data: bytes, *, envelope_recipients: Iterable[str] = ()) -> ReportMail:
    """Read a report mail (at most MAX_REPORT_BYTES are read; at most MAX_LINES failed
    recipients are taken from it). `envelope_recipients`: the RCPT TO addresses it came
    with, when it came over SMTP. Never raises: a mail that cannot be read (8-bit bytes in
    its headers, parts nested past the parser's depth) reports nothing."""
    recipients = tuple(str(r) for r in envelope_recipients)
    try:
        return _read(data, recipients)
    except Exception as error:  # a hostile or broken mail must not stop the intake
        log.warning("a report mail could not be read: %s", type(error).__name__)
        return ReportMail((), _unique(recipients), None, None)


def _read(data: bytes, envelope_recipients: tuple[str, ...]) -> ReportMail:
    message = email.message_from_bytes(data[:MAX_REPORT_BYTES], policy=email.policy.compat32)
    trace = [*envelope_recipients, *_header_addresses(message, "To", "Delivered-To",
                                                      "X-Original-To", "Envelope-To")]  # fmt: skip
    report_id = _message_id(_field(message, "Message-ID"))
    report = _report_part(message)
    if report is not None and report[0] == "feedback-report":
        return _arf(message, report[1], trace, report_id)
    from_mail_system = report is not None or _from_mail_system(message)
    original = _original_headers(message)
    if original is None and report is None:
        original = _quoted_headers(message)
    if original is not None:
        trace.extend(_header_addresses(original, "Return-Path"))
    original_id = _message_id(_field(original, "Message-ID")) if original is not None else None
    if report is not None and report[0] in _DSN_TYPES:
        recipients = _dsn(report[1])
    elif report is not None:
        recipients = ()  # another kind of report (RFC 6522): nothing failed
    elif is_auto_reply(message) and not from_mail_system:
        return ReportMail((), _unique(trace), original_id, report_id, auto_reply=True)
    else:
        recipients = _other_bounce(message)
    return ReportMail(
        recipients[:MAX_LINES],
        _unique(trace),
        original_id,
        report_id,
        from_mail_system=from_mail_system and report is None,
    )


def is_auto_reply(message: Message) -> bool:
    """An out-of-office answer, a vacation notice or a challenge to prove we are human
    (RFC 3834 §5 Auto-Submitted, and the headers and subjects that older responders write
    instead). Never a report: to be ignored."""
    auto_submitted = (_field(message, "Auto-Submitted") or "no").strip().lower()
    if not auto_submitted.startswith("no"):
        return True
    if any(_field(message, name) for name in _AUTO_REPLY_HEADERS):
        return True
    if _field(message, "Precedence").strip().lower() == "auto_reply":
        return True
    subject = _field(message, "Subject")
    return _AUTO_REPLY_SUBJECT.search(subject) is not None


def _from_mail_system(message: Message) -> bool:
    """A bounce in a format of its own (Exim's, qmail's) is Auto-Submitted too (RFC 3834
    §2 asks it of every automatic message): told apart by who writes it and how."""
    if _field(message, "X-Failed-Recipients"):
        return True
    _, sender = parseaddr(_field(message, "From"))
    if _MAIL_SYSTEM.match(sender.partition("@")[0]):
        return True
    return _BOUNCE_SUBJECT.search(_field(message, "Subject")) is not None


_MAIL_SYSTEM = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mdaemon)$", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"\b(undeliver|returned mail|failure notice|delivery (status notification|failure)|"
    r"mail delivery failed|non-?delivery)",
    re.IGNORECASE,
)
_AUTO_REPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress-Reply")
_AUTO_REPLY_SUBJECT = re.compile(
    r"\b(out of (the )?office|auto(matic)?[ -]?(reply|response|svar)|autosvar|fravær|"
    r"vacation|on leave|please confirm your (e-?mail|message)|verify your (e-?mail|message))\b",
    re.IGNORECASE,
)


def _report_part(message: Message) -> tuple[str, Message] | None:
    """The multipart/report's machine-readable part (RFC 6522 §3) and its type."""
    for part in message.walk():
        if part.get_content_type() != "multipart/report":
            continue
        kind = str(collapse_rfc2231_value(part.get_param("report-type") or "")).lower()
        for sub in part.get_payload() if part.is_multipart() else []:
            if sub.get_content_type() == f"message/{kind}":
                return str(kind), sub
    return None


def _fields(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status or message/feedback-report part: the
    email package reads the former as a list of blocks, the latter as raw text or one."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    text = payload if isinstance(payload, str) else ""
    blocks = re.split(r"\r?\n\s*\r?\n", text.strip())
    return [email.message_from_string(block, policy=email.policy.compat32) for block in blocks]


def _dsn(part: Message) -> tuple[FailedRecipient, ...]:
    """RFC 3464 §2.3: a per-message block, then one block per recipient."""
    found = []
    for block in _fields(part):
        address = _typed_address(_field(block, "Final-Recipient")) or _typed_address(
            _field(block, "Original-Recipient")
        )
        action = _field(block, "Action").strip().lower()
        if address is None and not action:
            continue  # the per-message block
        if action not in ("failed", "delayed"):
            continue  # delivered, relayed, expanded: nothing failed
        diagnostic = _one_line(_field(block, "Diagnostic-Code"))
        status = _status(_field(block, "Status")) or _status(diagnostic)
        found.append(FailedRecipient(address, action, status, diagnostic))
    return tuple(found)


def _arf(message: Message, part: Message, trace: list[str], report_id: str | None) -> ReportMail:
    """RFC 5965 §3.1: Feedback-Type, Original-Rcpt-To (§3.2, optional: some providers
    redact it), and the original message or its headers in the third part."""
    blocks = _fields(part)
    fields = blocks[0] if blocks else Message()
    feedback_type = _field(fields, "Feedback-Type").strip().lower()
    original = _original_headers(message)
    original_id = _message_id(_field(original, "Message-ID")) if original is not None else None
    # Original-Mail-From (§3.2) is the original's envelope sender: its VERP address.
    trace.extend(_header_addresses(fields, "Original-Mail-From"))
    if original is not None:
        trace.extend(_header_addresses(original, "Return-Path"))
    if feedback_type not in ("abuse", ""):
        # not-spam, auth-failure, fraud, virus, other: no reader asked to stop (RFC 5965 §7.3)
        return ReportMail((), _unique(trace), original_id, report_id)
    address = _bare(_field(fields, "Original-Rcpt-To") or _field(fields, "Removal-Recipient"))
    if address is None and original is not None:
        tos = _header_addresses(original, "To")
        address = tos[0] if len(tos) == 1 else None
    # The same complaint forwarded twice is one: its original is one delivery.
    key = original_id or report_id
    return ReportMail(
        (FailedRecipient(address, "complaint", None, feedback_type or "abuse"),),
        _unique(trace),
        original_id,
        key,
    )


def _other_bounce(message: Message) -> tuple[FailedRecipient, ...]:
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # flufl.bounce's heuristics on a mail nobody meant as a bounce
        return ()
    text = "\n".join(_text_lines(message)).lower()
    found = []
    for action, addresses in (("failed", permanent), ("delayed", temporary - permanent)):
        for raw in sorted(addresses):
            address = _bare(raw.decode("utf-8", "replace"))
            if address is None:
                continue
            diagnostic = _near(text, address)
            if len(found) >= MAX_LINES:
                break
            found.append(FailedRecipient(address, action, _status(diagnostic), diagnostic))
    return tuple(found)


def _near(text: str, address: str) -> str:
    """The lines of a (lower-cased) free-text bounce from the address on: where MTAs write
    the reason."""
    at = text.find(address)
    if at < 0:
        return ""
    return _one_line(text[at : at + 600])


def _status(text: str) -> str | None:
    """An RFC 3463 code in `text`, or one made from a bare SMTP reply code ("550" →
    "5.0.0", RFC 3463 §3.1's "other or undefined")."""
    match = _ENHANCED.search(text)
    if match:
        return ".".join(match.groups())
    code = _SMTP_CODE.search(text)
    return f"{code.group(1)}.0.0" if code else None


def _original_headers(message: Message) -> Message | None:
    """The original message quoted in a report: message/rfc822 or text/rfc822-headers
    (RFC 6522 §3, RFC 3462), or the last attached message of a free-form bounce."""
    found = None
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                found = payload[0]
        elif kind == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                found = email.message_from_bytes(payload, policy=email.policy.compat32)
    return found


def _quoted_headers(message: Message) -> Message | None:
    """The original's headers quoted in a text bounce (Exim's "This is a copy of the
    message", qmail's "Below this line is a copy"): from the first header-looking line."""
    lines = list(_text_lines(message))
    for at, line in enumerate(lines):
        if _QUOTED_HEADER.match(line):
            return email.message_from_string("\n".join(lines[at:]), policy=email.policy.compat32)
    return None


_QUOTED_HEADER = re.compile(r"^(Return-Path|Received|Message-ID):\s", re.IGNORECASE)


def _text_lines(message: Message) -> Iterator[str]:
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                yield from payload.decode("utf-8", "replace").splitlines()


def _field(message: Message, name: str) -> str:
    """A header's value as text ("" when absent)."""
    value = message.get(name)
    return "" if value is None else _text(value)


def _text(value: object) -> str:
    """compat32 hands back a Header object for a value with 8-bit bytes in it (an RFC 6533
    DSN's UTF-8 address), and str() of one can fail."""
    try:
        return str(value)
    except Exception:
        return ""


def _typed_address(value: str | None) -> str | None:
    """`rfc822; someone@example.org` (RFC 3464 §2.3.2), or a bare address."""
    if not value:
        return None
    kind, semicolon, address = value.partition(";")
    return _bare(address if semicolon else kind)


def _bare(value: str) -> str | None:
    _, address = parseaddr(_one_line(value))
    address = address.strip().strip("<>").lower()
    return address if "@" in address and " " not in address else None


def _header_addresses(message: Message, *names: str) -> list[str]:
    values = [_text(v) for name in names for v in message.get_all(name, [])]
    return [a for _, raw in getaddresses(values) if (a := _bare(raw))]


def _message_id(value: object) -> str | None:
    text = _one_line(str(value or "")).strip()
    return text[:300] if text.startswith("<") and text.endswith(">") else None


def _one_line(value: str) -> str:
    return " ".join(str(value).split())[:500]


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.lower() for v in values))
