"""Real SMTP relays (aiosmtpd) that behave as production relays do at their edges: a cap on
connections per client, a session closed after so many messages, PIPELINING offered or not, a
relay that turns everyone away with 421, and a latency before each reply."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from service.embedded_redis import free_port
from service.mailsink import ReceivedMail


@dataclass
class RelayBehaviour:
    max_sessions: int | None = None  # more at once: EHLO and HELO answer 421
    close_after: int | None = None  # messages per session, then the relay hangs up
    busy_after: int | None = None  # messages per session, then 421 to MAIL and hang up
    refuse_all: bool = False  # 421 to every session (a relay that is down)
    pipelining: bool = False  # offer PIPELINING (RFC 2920) in the EHLO answer
    latency: float = 0.0  # seconds before each reply to MAIL, RCPT and DATA
    smtputf8: bool = True  # offer SMTPUTF8 (RFC 6531)
    busy_ehlo: float = 0.0  # seconds each EHLO keeps the relay busy (all its sessions wait)


@dataclass
class RelayLog:
    received: list[ReceivedMail] = field(default_factory=list)
    sessions: int = 0  # open now
    most_sessions: int = 0
    turned_away: int = 0
    pipelined: list[bool] = field(default_factory=list)  # per RCPT: was DATA already sent?
    # Per message: had the next message's MAIL come before this one's final reply went?
    next_behind_data: list[bool] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        return Counter(r for mail in self.received for r in mail.recipients)


class _Session(SMTP):
    relay: Relay

    def connection_made(self, transport: Any) -> None:
        with self.relay.lock:
            self.relay.log.sessions += 1
            # Judged as it is accepted, as Postfix's anvil counts: the first sessions in a
            # burst are served, those beyond the limit turned away.
            limit = self.relay.behaviour.max_sessions
            self.crowded = limit is not None and self.relay.log.sessions > limit
            self.relay.log.most_sessions = max(
                self.relay.log.most_sessions, self.relay.log.sessions
            )
        self.messages = 0
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        with self.relay.lock:
            self.relay.log.sessions -= 1
        super().connection_lost(error)


class _Handler:
    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    def _turned_away(self, server: Any, session: Any) -> bool:
        """Whether this session is refused; counted once per session (a client that hears
        421 to EHLO may try HELO on the same connection, as smtplib does)."""
        with self.relay.lock:
            if self.relay.behaviour.refuse_all or server.crowded:
                if not getattr(session, "turned_away", False):
                    session.turned_away = True
                    self.relay.log.turned_away += 1
                return True
        return False

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        if self._turned_away(server, session):
            return ["421 4.7.0 Too many connections, try later"]
        time.sleep(self.relay.behaviour.busy_ehlo)  # blocks the loop: a relay short of CPU
        session.host_name = hostname
        if self.relay.behaviour.pipelining:
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:
        if self._turned_away(server, session):
            return "421 4.7.0 Too many connections, try later"
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        await asyncio.sleep(self.relay.behaviour.latency)
        behaviour = self.relay.behaviour
        busy = behaviour.busy_after if behaviour.busy_after is not None else behaviour.close_after
        if busy is not None and server.messages >= busy:
            asyncio.get_running_loop().call_soon(server.transport.close)
            return "421 4.7.0 Too many messages in this session, closing"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        await asyncio.sleep(self.relay.behaviour.latency)
        waiting = bytes(getattr(server._reader, "_buffer", b""))
        with self.relay.lock:
            self.relay.log.pipelined.append(b"DATA" in waiting.upper())
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.relay.behaviour.latency)
        raw = envelope.original_content or envelope.content
        waiting = bytes(getattr(server._reader, "_buffer", b""))
        with self.relay.lock:
            self.relay.log.next_behind_data.append(b"MAIL FROM" in waiting.upper())
            self.relay.log.received.append(
                ReceivedMail(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(raw))
            )
        server.messages += 1
        close = self.relay.behaviour.close_after
        if close is not None and server.messages >= close:
            # Hung up once the 250 is on its way (a transport flushes what it holds first),
            # between two transactions, as relays do.
            asyncio.get_running_loop().call_soon(server.transport.close)
        return "250 OK"


class _Controller(Controller):
    def __init__(self, relay: Relay, port: int) -> None:
        super().__init__(
            _Handler(relay), hostname="127.0.0.1", port=port, data_size_limit=None,
            enable_SMTPUTF8=relay.behaviour.smtputf8,
        )  # fmt: skip
        self.relay = relay

    def factory(self) -> SMTP:
        session_class = type("Session", (_Session,), {"relay": self.relay})
        return session_class(self.handler, **self.SMTP_kwargs)


class Relay:
    """An aiosmtpd relay on 127.0.0.1 in a thread of its own; `with Relay(...) as relay:`."""

    def __init__(self, behaviour: RelayBehaviour | None = None) -> None:
        self.behaviour = behaviour or RelayBehaviour()
        self.log = RelayLog()
        self.lock = threading.Lock()
        self.port = free_port()
        self._controller = _Controller(self, self.port)

    def url(self, **options: object) -> str:
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"smtp://127.0.0.1:{self.port}" + (f"?{query}" if query else "")

    def __enter__(self) -> Relay:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
