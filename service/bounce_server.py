"""The bounce server: an SMTP server (aiosmtpd) for the bounce domain, `flask --app service
bounces serve`. It takes mail for BOUNCE_ADDRESS and its VERP addresses only, stores each
mail and rings a worker (domain.incoming_reports): it parses nothing itself, so a burst of
bounces is answered at the speed of an INSERT.

Answers (RFC 5321 §4.2, RFC 3463): 550 5.1.1 to a recipient that is not a bounce address
(it is no open relay and no mailbox), 552 5.3.4 past MAX_MESSAGE_BYTES, 451 4.3.0 when the
database cannot store the mail (the sender tries again), 250 once it is stored. Past
MAX_SESSIONS open connections a new one is greeted with 421 4.3.2 and closed (RFC 5321
§3.8, §4.2.3: the sender tries again later); a session is closed after IDLE_SECONDS in
one command.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # what SIZE announces; a report mail is read to 1 MiB
MAX_RECIPIENTS = 20
STORE_THREADS = 4  # database writes at once; more mails wait their turn
STORE_SECONDS = 30.0  # a store (or ring) that takes longer answers 451: the sender retries
MAX_SESSIONS = 100  # SMTP connections open at once
# A session is closed after this long in one command (aiosmtpd's clock runs from each
# command's start, DATA's store included): RFC 5321 §4.5.3.2.7's server timeout.
IDLE_SECONDS = 300.0

Store = Callable[[bytes, list[str]], int]  # the mail and its RCPT TO addresses -> its id
Ring = Callable[[int], object]  # ring a worker for the stored mail; may fail (the sweep)


class BounceHandler:
    def __init__(self, accepts: Callable[[str], bool], store: Store, ring: Ring) -> None:
        self.accepts = accepts
        self.store = store
        self.ring = ring
        self._threads = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="bounce-store")

    def close(self) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)

    async def _in_thread(self, call: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(
            loop.run_in_executor(self._threads, call, *args), STORE_SECONDS
        )

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if not self.accepts(address):
            return "550 5.1.1 No such mailbox: this server takes bounces only"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = bytes(envelope.original_content or envelope.content or b"")
        try:
            report_id = await self._in_thread(self.store, data, list(envelope.rcpt_tos))
        except Exception as error:
            log.error("a report mail could not be stored: %s", type(error).__name__)
            return "451 4.3.0 Not stored, try again later"
        try:
            await self._in_thread(self.ring, report_id)
        except Exception as error:  # stored: the sweep rings for it
            log.warning("report mail %s stored, not rung: %s", report_id, type(error).__name__)
        return "250 2.0.0 Report taken"


class _Sessions:
    """Connections open now, counted on the server's event loop (one thread)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0


class _CappedSMTP(SMTP):
    """aiosmtpd's SMTP session that turns a connection away, with 421, past the cap."""

    def __init__(self, handler: Any, *, sessions: _Sessions, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._sessions = sessions
        self._counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if not self._counted:  # not again for STARTTLS's second call
            self._counted = True
            self._sessions.open += 1

    def connection_lost(self, error: Exception | None) -> None:
        if self._counted:
            self._counted = False
            self._sessions.open -= 1
        super().connection_lost(error)

    async def _handle_client(self) -> None:  # aiosmtpd 1.4: the session, greeting first
        if self._sessions.open > self._sessions.limit:
            await self.push("421 4.3.2 Too many connections, try again later")
            if self.transport is not None:
                self.transport.close()
            return
        await super()._handle_client()


class _Controller(Controller):
    def __init__(self, handler: BounceHandler, *, max_sessions: int, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._sessions = _Sessions(max_sessions)

    def factory(self) -> SMTP:
        return _CappedSMTP(self.handler, sessions=self._sessions, **self.SMTP_kwargs)


def controller(
    handler: BounceHandler, *, host: str, port: int, max_sessions: int = MAX_SESSIONS
) -> Controller:
    return _Controller(
        handler,
        max_sessions=max_sessions,
        hostname=host,
        port=port,
        data_size_limit=MAX_MESSAGE_BYTES,
        decode_data=False,
        enable_SMTPUTF8=True,
        server_hostname="pressroom-bounces",
        ident="Pressroom bounce server",
        timeout=IDLE_SECONDS,
    )
