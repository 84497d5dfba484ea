"""The Transport seam a send goes through, and its SMTP implementation (SMTP_URL).

A Transport takes the bytes of one message and answers with a typed outcome: `SENT`, or the
SendError that says what the server (or the network) answered, by class: TransientSendError
(4xx, connection trouble: try again), PermanentSendError (5xx), NoSmtpUtf8Error (this address
needs SMTPUTF8, RFC 6531, and the relay lacks it). `systemic` marks an answer about every
message (auth, sender, a 421 or a dropped connection) rather than this recipient.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Final, Protocol

from service.domain.emails import OutgoingMail
from service.domain.mail_headers import parse_mailbox
from service.domain.refusals import NO_SMTPUTF8, Reply, Stage
from service.sending.meters import SMTP_REPLY_SECONDS
from service.smtp_relays import SmtpSettings

log = logging.getLogger(__name__)


class SendError(Exception):
    """An SMTP failure: the reply code (0 when the connection failed), the enhanced status code
    when the server gave one, the command it answered, and whether it concerns every message
    (auth, sender, connection) rather than this recipient."""

    def __init__(
        self,
        code: int,
        detail: str,
        *,
        systemic: bool = False,
        stage: Stage = Stage.SESSION,
        after_data: bool = False,
    ) -> None:
        """`after_data`: the message itself was under way when the line failed, so the
        server may have taken it; sending it again at once risks a duplicate."""
        super().__init__(f"{code} {detail}".strip())
        self.code = code
        self.detail = detail
        self.systemic = systemic
        self.stage = stage
        self.after_data = after_data

    @property
    def reply(self) -> Reply:
        return Reply(self.code, self.detail, self.stage)

    @property
    def enhanced(self) -> str:
        return self.reply.enhanced


class TransientSendError(SendError):
    """The server or the network said 'not now' (4xx, connection trouble): try again later."""


class PermanentSendError(SendError):
    """The server refused for good (5xx)."""


class NoSmtpUtf8Error(PermanentSendError):
    """The address needs SMTPUTF8 (letters beyond ASCII before the @, RFC 6531) and the relay
    does not offer it: this delivery alone fails. Neither the reader's fault (the address is
    valid) nor a refusal of every message: no bounce is scored, the send goes on. Raised
    before any command of the transaction, so the connection stays usable."""

    def __init__(self) -> None:
        super().__init__(0, NO_SMTPUTF8, stage=Stage.RCPT)


class Sent:
    """The server took the message (a 250 to the end of DATA)."""

    def __repr__(self) -> str:
        return "SENT"


SENT: Final = Sent()
Outcome = Sent | SendError


OnSent = Callable[[], None]


class Transport(Protocol):
    """Where messages leave: one kept connection, reused from one message to the next."""

    def deliver(
        self, sender: str, recipients: list[str], data: bytes, on_sent: OnSent | None = None
    ) -> Outcome:
        """Send `data` (a whole RFC 5322 message) from `sender` (`Name <addr>` or the bare
        address) to `recipients`; never raises for what the server or the network answers.
        `on_sent` is called once the server took the message, before anything more goes over
        that connection (the batch journals the message there: CONTRACT §8)."""
        ...

    def close(self) -> None: ...


class PendingReply:
    """The reply to a message's end of data, not yet read: RFC 2920 §3.1 lets the next
    message's MAIL, RCPT and DATA follow the end of data unanswered, so one round trip carries
    one message instead of two. Whoever next holds the connection reads it (`settle`);
    `wait` blocks the message's own thread until then."""

    def __init__(self, on_sent: OnSent | None) -> None:
        self._on_sent = on_sent
        self._settled = threading.Event()
        self._outcome: Outcome | None = None

    def settle(self, outcome: Outcome) -> None:
        if isinstance(outcome, Sent) and self._on_sent is not None:
            _call_on_sent(self._on_sent)
        self._outcome = outcome
        self._settled.set()

    def wait(self, timeout: float | None) -> Outcome | None:
        """The outcome, or None when not settled within `timeout` seconds (None: no limit)."""
        return self._outcome if self._settled.wait(timeout) else None


def _call_on_sent(on_sent: OnSent) -> None:
    try:
        on_sent()
    except Exception:  # its owner sees to it (the batch writes the journal again)
        log.exception("on_sent failed")


def error_for(code: int, detail: str, stage: Stage, *, systemic: bool = False) -> SendError:
    """The SendError an SMTP reply `code` (RFC 5321 §4.2) makes: 5xx permanent, else
    transient; a 421 (the server closes the connection) is systemic."""
    if code == 421:  # the server is closing the connection: nothing goes through it now
        systemic = True
    kind = PermanentSendError if code >= 500 else TransientSendError
    return kind(code, detail, systemic=systemic, stage=stage)


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the system's CA certificates takes tens of milliseconds: do it once per process.
    return ssl.create_default_context()


@functools.lru_cache(maxsize=16)
def _envelope_from(sender: str) -> str:
    return parse_mailbox(sender).addr_spec


class SmtpMailer:
    """The SMTP Transport. Opens one connection, sends, and keeps it for the next message
    until closed. A kept connection the server has since dropped is replaced once,
    transparently. Not thread-safe: one holder at a time (RelayPool hands it around)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._connection: smtplib.SMTP | None = None
        self._in_data = False  # the message itself is under way (send_raw)
        self._pending: PendingReply | None = None  # a message's final reply, unread
        self._replies = _ReplyTimes(settings.name)

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        connection: smtplib.SMTP
        if s.scheme == "smtps":
            connection = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=_tls_context())
        else:
            connection = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            if s.scheme == "smtp+starttls":
                connection.starttls(context=_tls_context())
        # Commands written behind a message whose reply is not in yet must leave at once:
        # Nagle's algorithm would hold them until that reply brings the ACK, a round trip.
        if connection.sock is not None:
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if s.username:
            connection.login(s.username, s.password or "")
        return connection

    def send(self, mail: OutgoingMail) -> None:
        self.send_raw(mail.sender, [mail.recipient], mail.data)

    def deliver(
        self, sender: str, recipients: list[str], data: bytes, on_sent: OnSent | None = None
    ) -> Outcome:
        """`send_raw`, with the server's refusal as the outcome instead of an exception."""
        try:
            self.send_raw(sender, recipients, data)
        except SendError as error:
            return error
        if on_sent is not None:
            _call_on_sent(on_sent)
        return SENT

    def deliver_leaving_reply(
        self,
        sender: str,
        recipients: list[str],
        data: bytes,
        on_sent: OnSent | None,
        leave_reply: Callable[[float], bool],
    ) -> Outcome | PendingReply:
        """`deliver`, but where the server offers PIPELINING and `leave_reply(round_trip)`
        agrees (given the seconds from writing this message's commands to MAIL's reply), it
        returns once the message is written, before the server's final reply: a
        PendingReply, settled (and `on_sent` called) by the next `deliver` over this
        connection, by `settle_pending` or by `close`. The next message's commands then
        share the round trip of this reply."""
        try:
            left = self.send_raw(sender, recipients, data, leave_reply=leave_reply)
        except SendError as error:
            return error
        if not left:
            if on_sent is not None:
                _call_on_sent(on_sent)
            return SENT
        self._pending = PendingReply(on_sent)
        return self._pending

    def settle_pending(self) -> None:
        """Read the reply a previous message left unread and settle it. Raises
        smtplib.SMTPServerDisconnected when the line is gone (the message then settles as
        a systemic TransientSendError with `after_data`: the server may have it)."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        if self._connection is None:
            pending.settle(_line_lost(after_data=True))
            raise smtplib.SMTPServerDisconnected("the server closed the connection")
        try:
            code, reply = self._connection.getreply()
        except BaseException:  # the line is lost (or a bug): its sender must not wait forever
            pending.settle(_line_lost(after_data=True))
            raise
        if code == 250:
            pending.settle(SENT)
        else:
            pending.settle(error_for(code, _text(reply), Stage.DATA))

    @property
    def is_open(self) -> bool:
        """Whether a connection is held (the server may still have dropped it unseen)."""
        return self._connection is not None

    def open(self) -> None:
        """Connect now unless connected: TCP, TLS, the greeting, EHLO and AUTH. Raises a
        systemic SendError: TransientSendError when the relay cannot be reached or answers
        4xx (a 421 "too many connections" among them), PermanentSendError for settings that
        cannot work (AUTH or STARTTLS not offered, a certificate that does not verify)."""
        if self._connection is not None:
            return
        try:
            self._connection = self._connect()
            self._connection.ehlo_or_helo_if_needed()
        except smtplib.SMTPServerDisconnected:
            self.close()
            raise _line_lost(after_data=False) from None
        except Exception as error:
            raise self._session_error(error) from None

    def send_raw(
        self,
        sender: str,
        recipients: list[str],
        data: bytes,
        *,
        leave_reply: Callable[[float], bool] | None = None,
    ) -> bool:
        """Send one message over the kept connection; raises a SendError subclass. With
        `leave_reply`, over a PIPELINING connection, returns True once the message is written,
        its final reply left unread (deliver_leaving_reply); False when the reply was read.

        `sender`: MAIL_FROM as configured (`Name <addr>`) or the bare address; the envelope
        takes the same address as the From header (parseaddr read "Acme, Inc. <a@b>" as
        "Acme"). MAIL, RCPT and DATA go in one round trip where the server offers PIPELINING
        (RFC 2920), one by one otherwise; the bytes on the wire after DATA are the same."""
        envelope_from = _envelope_from(sender)
        kept = self._connection is not None
        international = not (envelope_from.isascii() and all(r.isascii() for r in recipients))
        self._in_data = False
        try:
            if self._connection is None:
                self._connection = self._connect()
            connection = self._connection
            connection.ehlo_or_helo_if_needed()
            options: list[str] = []
            if international:
                options = self._utf8_options(connection)
            if connection.has_extn("pipelining"):
                return _pipelined_transaction(
                    connection,
                    envelope_from,
                    recipients,
                    data,
                    options,
                    mark_data=self._mark_data,
                    before_replies=self.settle_pending,
                    leave_reply=leave_reply,
                    timed=self._replies,
                )
            self.settle_pending()
            _plain_transaction(
                connection, envelope_from, recipients, data, options, self._mark_data, self._replies
            )
            return False
        except smtplib.SMTPServerDisconnected:
            # No "250" came back. Mostly a kept connection the server closed while it sat idle
            # (the first command fails): renew it once and send. Once the message was under
            # way the server may have taken it: that is said (after_data), never resent here.
            self.close()
            if kept and not self._in_data:
                return self.send_raw(sender, recipients, data, leave_reply=leave_reply)
            raise _line_lost(after_data=self._in_data) from None
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = min(error.recipients.values(), default=(550, b""))
            self._close_after(code)
            raise error_for(code, _text(reply), Stage.RCPT) from None
        except smtplib.SMTPSenderRefused as error:
            self._close_after(error.smtp_code)
            raise error_for(
                error.smtp_code, _text(error.smtp_error), Stage.MAIL, systemic=True
            ) from None
        except smtplib.SMTPDataError as error:
            self._close_after(error.smtp_code)
            raise error_for(error.smtp_code, _text(error.smtp_error), Stage.DATA) from None
        except NoSmtpUtf8Error:
            # Nothing of this message went; a reply left by the one before is read now, so
            # the connection goes back with nothing pending (its sender waits on it).
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.settle_pending()
            raise
        except Exception as error:
            raise self._session_error(error) from None

    def _mark_data(self) -> None:
        self._in_data = True

    def _session_error(self, error: Exception) -> SendError:
        """The SendError for a failure of the session itself (connect, greeting, EHLO,
        STARTTLS, AUTH, the line): systemic, whoever the recipient. Closes the connection.
        Re-raises what is no SMTP or network failure (a bug)."""
        self.close()
        if isinstance(error, smtplib.SMTPResponseException):
            # The greeting (a 421 "too many connections" among them), EHLO, STARTTLS, AUTH.
            return error_for(error.smtp_code, _text(error.smtp_error), Stage.SESSION, systemic=True)
        if isinstance(error, smtplib.SMTPNotSupportedError | ssl.SSLCertVerificationError):
            # AUTH or STARTTLS the server does not offer, a certificate that does not verify:
            # the settings, not the moment. Retrying changes nothing; the send pauses and says so.
            return PermanentSendError(
                0, f"{error.__class__.__name__}: {error}"[:200], systemic=True, stage=Stage.SESSION
            )
        if isinstance(error, smtplib.SMTPException | OSError):
            return TransientSendError(
                0,
                f"connection failed: {error.__class__.__name__}",
                systemic=True,
                after_data=getattr(self, "_in_data", False),
            )
        raise error

    @staticmethod
    def _utf8_options(connection: smtplib.SMTP) -> list[str]:
        """MAIL FROM parameters for a message to an address beyond ASCII: SMTPUTF8 (RFC 6531
        §3.4), with BODY=8BITMIME where offered, as its header holds UTF-8 (RFC 6152);
        NoSmtpUtf8Error when the server does not offer SMTPUTF8 in its EHLO answer."""
        connection.ehlo_or_helo_if_needed()
        if not connection.has_extn("smtputf8"):
            raise NoSmtpUtf8Error()
        options = ["SMTPUTF8"]
        if connection.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        return options

    def _close_after(self, code: int) -> None:
        if code == 421:
            self.close()

    def close(self) -> None:
        """QUIT and close; a reply left unread is read (and settled) first."""
        with contextlib.suppress(smtplib.SMTPException, OSError):
            self.settle_pending()
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


def _pipelined_transaction(
    connection: smtplib.SMTP,
    envelope_from: str,
    recipients: list[str],
    data: bytes,
    options: list[str],
    *,
    mark_data: Callable[[], None],
    before_replies: Callable[[], None],
    leave_reply: Callable[[float], bool] | None,
    timed: _ReplyTimes,
) -> bool:
    """MAIL, every RCPT and DATA written at once, their replies read in order (RFC 2920 §3.1),
    then the message. Raises what smtplib.SMTP.sendmail raises for the same replies, so that
    one mapping reads both; a transaction refused midway is reset (RSET) as sendmail does.
    `before_replies` runs once the commands are written (it reads a previous message's
    final reply, which the server sends first). When `leave_reply`, given the seconds from
    writing the commands to MAIL's reply, says so, returns True once the message is written,
    without reading its final reply."""
    options = _with_size(connection, options, data)
    encoding = "utf-8" if "SMTPUTF8" in options else "ascii"
    parameters = "".join(f" {option}" for option in options)
    commands = [f"MAIL FROM:{smtplib.quoteaddr(envelope_from)}{parameters}"]
    commands += [f"RCPT TO:{smtplib.quoteaddr(r)}" for r in recipients]
    commands.append("DATA")
    written = time.monotonic()
    connection.send("".join(f"{c}\r\n" for c in commands).encode(encoding))
    before_replies()
    mail = connection.getreply()
    round_trip = time.monotonic() - written
    timed.mail.observe(round_trip)
    rcpts = [connection.getreply() for _ in recipients]
    data_reply = connection.getreply()
    refused = {
        r: reply for r, reply in zip(recipients, rcpts, strict=True) if reply[0] not in (250, 251)
    }
    if data_reply[0] == 354 and (mail[0] != 250 or len(refused) == len(recipients)):
        # A server that took DATA after all: end the empty message, then reset.
        connection.send(b".\r\n")
        connection.getreply()
    if mail[0] != 250:
        _reset(connection)
        raise smtplib.SMTPSenderRefused(mail[0], mail[1], envelope_from)
    if len(refused) == len(recipients):
        _reset(connection)
        raise smtplib.SMTPRecipientsRefused(refused)
    if data_reply[0] != 354:
        _reset(connection)
        raise smtplib.SMTPDataError(*data_reply)
    mark_data()
    connection.send(_dot_stuffed(data))
    if leave_reply is not None and leave_reply(round_trip):
        return True
    written = time.monotonic()
    code, reply = connection.getreply()
    timed.data.observe(time.monotonic() - written)
    if code != 250:
        _reset(connection)
        raise smtplib.SMTPDataError(code, reply)
    return False


def _plain_transaction(
    connection: smtplib.SMTP,
    envelope_from: str,
    recipients: list[str],
    data: bytes,
    options: list[str],
    mark_data: Callable[[], None],
    timed: _ReplyTimes,
) -> None:
    """MAIL, RCPT and DATA one by one, as smtplib.SMTP.sendmail sends them (and raising what
    it raises), but saying when the message itself goes (`mark_data`, before DATA)."""
    options = _with_size(connection, options, data)
    asked = time.monotonic()
    code, reply = connection.mail(envelope_from, options)
    timed.mail.observe(time.monotonic() - asked)
    if code != 250:
        _end_transaction(connection, code)
        raise smtplib.SMTPSenderRefused(code, reply, envelope_from)
    refused: dict[str, tuple[int, bytes]] = {}
    for recipient in recipients:
        code, reply = connection.rcpt(recipient)
        if code not in (250, 251):
            refused[recipient] = (code, reply)
        if code == 421:
            connection.close()
            raise smtplib.SMTPRecipientsRefused(refused)
    if len(refused) == len(recipients):
        _reset(connection)
        raise smtplib.SMTPRecipientsRefused(refused)
    mark_data()
    asked = time.monotonic()
    code, reply = connection.data(data)  # DATA, its 354, the message and the final reply
    timed.data.observe(time.monotonic() - asked)
    if code != 250:
        _end_transaction(connection, code)
        raise smtplib.SMTPDataError(code, reply)


class _ReplyTimes:
    """meters.SMTP_REPLY_SECONDS for one relay, its labels looked up once."""

    def __init__(self, relay: str) -> None:
        self.mail = SMTP_REPLY_SECONDS.labels(relay, "mail")
        self.data = SMTP_REPLY_SECONDS.labels(relay, "data")


def _line_lost(*, after_data: bool) -> TransientSendError:
    """The connection went with no reply: systemic; `after_data`, the server may have the
    message."""
    return TransientSendError(
        0, "the server closed the connection", systemic=True, after_data=after_data
    )


def _with_size(connection: smtplib.SMTP, options: list[str], data: bytes) -> list[str]:
    """MAIL FROM's parameters, with SIZE (RFC 1870) where the server declares the extension."""
    return [*options, f"SIZE={len(data)}"] if connection.has_extn("size") else options


def _dot_stuffed(data: bytes) -> bytes:
    """The message as DATA carries it (RFC 5321 §4.5.2), as smtplib.SMTP.data writes it:
    a leading dot doubled on every line, a final CRLF, then the lone dot."""
    quoted = data.replace(b"\n.", b"\n..")  # as (?m)^\. does, in a tenth of a regex's time
    if quoted.startswith(b"."):
        quoted = b"." + quoted
    if not quoted.endswith(b"\r\n"):
        quoted += b"\r\n"
    return quoted + b".\r\n"


def _end_transaction(connection: smtplib.SMTP, code: int) -> None:
    """After a refusal: RSET, or on a 421 (the server is closing) the line closed."""
    if code == 421:
        connection.close()
    else:
        _reset(connection)


def _reset(connection: smtplib.SMTP) -> None:
    """RSET after a refusal, ignoring a server that is gone (the next send finds out)."""
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        connection.rset()
