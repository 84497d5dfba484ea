"""The Transport a worker process sends through: kept SMTP connections to SMTP_URL's relays.

Up to SMTP_CONNECTIONS connections per process, shared by its threads: each `deliver` checks one
out, sends, and hands it back for the next message. Messages spread over the relays by weight
(smooth weighted round robin, as nginx balances upstreams); a relay that cannot be reached or
answers 421 is rested with a growing pause while the others carry the send, and the message goes
to another relay at once, so nobody waits on a relay that is down (listmonk's SMTP pools do the
same). A relay that answers 421 to a new connection while others to it are open is taken to limit
connections per client: the pool keeps to what it accepts, and tries one more now and then.
Connections are renewed after SMTP_MESSAGES_PER_CONNECTION messages (relays close long sessions).

Over a relay that offers PIPELINING a connection goes back to the pool as soon as a message is
written, its final reply unread: the next message's MAIL, RCPT and DATA follow at once and the
reply comes back with theirs (RFC 2920 §3.1), so a message costs one round trip, not two. Its
sender waits for whoever holds the connection next to read that reply, or reads it itself.
"""

from __future__ import annotations

import functools
import logging
import math
import random
import smtplib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from service.sending.transport import (
    OnSent,
    Outcome,
    PendingReply,
    SendError,
    SmtpMailer,
    TransientSendError,
)
from service.smtp_relays import SmtpSettings

log = logging.getLogger(__name__)

REST_FIRST = 1.0  # seconds a relay rests after its first failure; doubles, with jitter
REST_LONGEST = 300.0
GROW_AFTER = 30.0  # seconds without a "too many connections" before trying one more
WAIT_SLICE = 0.5  # seconds between looks while every usable relay is at its limit
PATIENCE = 5.0  # seconds a message waits for a resting relay before its batch gives it back
CONNECTION_WAIT = 60.0  # seconds a message waits for a busy relay's connection to come back
# A message written with its final reply unread, and the next one over the same connection:
# the threads (and a batch's window) a pool of N connections to a far relay keeps busy.
IN_FLIGHT_PER_CONNECTION = 2
# Seconds a message whose final reply is unread waits for the next message to take its
# connection (and read the reply) before reading it itself.
REPLY_GRACE = 0.002
# Seconds of round trip from which a message's final reply is left for the next message to
# read. Nearer, 32 connections at two round trips a message already outrun a worker's CPU
# (about 0.5 ms a message): the handover would cost CPU and save nothing.
FAR_RELAY = 0.005


@dataclass(eq=False)
class _Relay:
    settings: SmtpSettings
    cap: int  # max_connections, or the whole pool
    limit: int  # what the relay is taken to accept: cap, or less after a 421 at connect
    idle: list[SmtpMailer] = field(default_factory=list)
    open: int = 0  # connections open or being opened, idle or in use
    opening: int = 0  # of which being opened
    rested_until: float = 0.0
    failures: int = 0  # in a row; sets the length of the next rest
    limited_at: float = 0.0
    current_weight: float = 0.0  # smooth weighted round robin's running score
    least_round_trip: float = math.inf  # seconds: the relay's distance, as far as seen
    probing: bool = False  # its first message is out alone, to measure the distance
    probed: bool = False

    def far(self, round_trip: float) -> bool:
        """Whether the relay is FAR_RELAY away or more, given a round trip just measured.
        The least round trip seen is its distance; a longer one is a busy moment. The first
        is measured with nothing else of ours under way (RelayPool's probe): at the start of
        a send every connection opens at once, and the relay's answers queue behind them."""
        self.least_round_trip = min(self.least_round_trip, round_trip)
        return self.least_round_trip >= FAR_RELAY

    def usable(self, now: float) -> bool:
        return self.rested_until <= now


class AllRelaysResting(TransientSendError):
    """Every relay failed and rests: the batch gives its rows back and tries later."""


class RelayPool:
    """Transport over several relays; thread-safe. `connect(settings)` makes a connection
    (SmtpMailer, or a test's own); `clock` is monotonic seconds; `on_far` is called once, when
    a relay first proves FAR_RELAY away (its senders may then grow: IN_FLIGHT_PER_CONNECTION)."""

    def __init__(
        self,
        relays: Sequence[SmtpSettings],
        *,
        connections: int,
        messages_per_connection: int,
        connect: Callable[[SmtpSettings], SmtpMailer] = SmtpMailer,
        clock: Callable[[], float] = time.monotonic,
        on_far: Callable[[], None] = lambda: None,
    ) -> None:
        if not relays or connections < 1 or messages_per_connection < 1:
            raise ValueError("a relay pool needs relays, connections and messages >= 1")
        caps = [min(r.max_connections or connections, connections) for r in relays]
        self.relays = [_Relay(r, cap=cap, limit=cap) for r, cap in zip(relays, caps, strict=True)]
        self.connections = connections
        self.messages_per_connection = messages_per_connection
        self._connect = connect
        self._clock = clock
        self._sent_on: dict[int, int] = {}  # id(connection) -> messages sent on it
        mutex = threading.RLock()
        self._lock = threading.Condition(mutex)  # any change: a rest, a limit, a slot, close
        # A connection back in the pool: one sender waiting for one is woken, not all of them
        # (with twice as many senders as connections, waking all cost CPU on every message).
        self._returned = threading.Condition(mutex)
        self._closed = False
        self._on_far = on_far
        self._found_far = False

    # -- the Transport ---------------------------------------------------------------------

    def deliver(
        self, sender: str, recipients: list[str], data: bytes, on_sent: OnSent | None = None
    ) -> Outcome:
        """Send one message through some relay; never raises for what a relay answers. A
        relay's failure that is about the relay (unreachable, 421, a dropped connection)
        rests it and the message goes to another; with every relay resting, the last such
        error comes back (systemic: the batch gives its rows back and tries later).
        `on_sent`: as Transport.deliver; it may run in the thread of the next message over
        the same connection (the one that reads the reply)."""
        tried: set[int] = set()
        errors: list[SendError] = []
        started = self._clock()
        deadline = started + PATIENCE
        while True:
            checked_out = self._check_out(tried, errors, started + CONNECTION_WAIT)
            if checked_out is None:
                if self._wait_for_a_relay(deadline):
                    tried.clear()  # each of them rested since: try them again
                    continue
                if errors:
                    return errors[-1]
                return AllRelaysResting(0, "every SMTP relay is resting", systemic=True)
            relay, connection, used, probe = checked_out
            self._await_probe(relay, probe)
            try:
                outcome = connection.deliver_leaving_reply(
                    sender, recipients, data, on_sent, functools.partial(self._far, relay)
                )
            except BaseException:
                self._failed(relay, connection, None, rest=False)
                if probe:
                    self._end_probe(relay, probed=False)
                raise
            if probe:
                systemic = isinstance(outcome, TransientSendError) and outcome.systemic
                self._end_probe(relay, probed=not systemic)
            if isinstance(outcome, PendingReply):
                self._check_in(relay, connection)
                return self._await_reply(relay, connection, outcome)
            if isinstance(outcome, TransientSendError) and outcome.systemic:
                if outcome.after_data:
                    # The relay may have the message: never sent again from here. The batch
                    # gives its rows back for later, as for an outage.
                    self._failed(relay, connection, outcome, rest=not used)
                    return outcome
                # A connection that carried mail before and now hears 421 or is dropped has
                # most likely met the relay's limit per session: the message goes again over
                # another connection, and the relay does not rest for it. A fresh one failing
                # says the relay itself is in trouble.
                self._failed(relay, connection, outcome, rest=not used)
                if not used:
                    tried.add(id(relay))
                    errors.append(outcome)
                continue
            self._check_in(relay, connection)
            return outcome

    def _await_probe(self, relay: _Relay, probe: bool) -> None:
        """The probe waits for the connections being opened with it (their greetings and
        EHLOs would slow the relay's answer); the others wait for the probe."""
        if not relay.probing:
            return
        with self._lock:
            if probe:
                while relay.opening:
                    self._lock.wait(WAIT_SLICE)
            else:
                while relay.probing:
                    self._lock.wait(WAIT_SLICE)

    def _end_probe(self, relay: _Relay, *, probed: bool) -> None:
        """The probe is back; `probed`: it got through, its round trip measured where the
        relay offers PIPELINING (else another message probes)."""
        with self._lock:
            relay.probing = False
            relay.probed = relay.probed or probed
            self._wake_all()

    def _far(self, relay: _Relay, round_trip: float) -> bool:
        far = relay.far(round_trip)
        if far and not self._found_far:
            self._found_far = True
            self._on_far()
        return far

    def _await_reply(self, relay: _Relay, connection: SmtpMailer, pending: PendingReply) -> Outcome:
        """The outcome of a message whose final reply was left unread on `connection`, now
        back in the pool. The next message over it reads the reply (whoever takes a
        connection settles its pending reply before giving it back, and so does closing it);
        if nobody has taken it within REPLY_GRACE, this thread takes it back and reads the
        reply itself."""
        outcome = pending.wait(REPLY_GRACE)
        if outcome is not None:
            return outcome
        with self._lock:
            mine = connection in relay.idle
            if mine:
                relay.idle.remove(connection)
        if mine:
            try:
                connection.settle_pending()
            except (smtplib.SMTPException, OSError):
                self._failed(relay, connection, None, rest=False)  # settled as a lost line
            except BaseException:
                self._failed(relay, connection, None, rest=False)
                raise
            else:
                self._check_in(relay, connection, counted=False)
        outcome = pending.wait(None)
        assert outcome is not None  # settled by now, or by the connection's holder
        return outcome

    def close(self) -> None:
        """Close every idle connection (QUIT); connections in use close as they come back."""
        with self._lock:
            self._closed = True
            idle = [(r, c) for r in self.relays for c in r.idle]
            for _, connection in idle:
                self._sent_on.pop(id(connection), None)
            for relay in self.relays:
                relay.open -= len(relay.idle)
                relay.idle.clear()
            self._wake_all()
        for _, connection in idle:
            connection.close()

    # -- inside ----------------------------------------------------------------------------

    def _check_out(
        self, tried: set[int], errors: list[SendError], deadline: float
    ) -> tuple[_Relay, SmtpMailer, bool, bool] | None:
        """A connection to the relay whose turn it is, whether it has carried mail and
        whether its message is the relay's probe (_await_probe): an idle one, else a new
        one. None when no relay outside `tried` is usable; a relay that fails to connect
        joins `tried` and its error `errors`. Waits for a connection to come back at most
        until `deadline` (None then, as when no relay is usable)."""
        while True:
            surplus: SmtpMailer | None = None
            with self._lock:
                now = self._clock()
                usable = [r for r in self.relays if id(r) not in tried and r.usable(now)]
                if not usable or self._closed or now >= deadline:
                    return None
                relay = self._turn(usable)
                if relay is None:
                    self._returned.wait(min(WAIT_SLICE, deadline - now))
                    continue
                if any(r.idle for r in self.relays if r is not relay or len(r.idle) > 1):
                    self._returned.notify()  # more idle than this thread takes: pass it on
                if relay.idle:
                    connection = relay.idle.pop()
                    used = self._sent_on.get(id(connection), 0) > 0
                    return relay, connection, used, self._begin_probe(relay)
                if self._open_total() >= self.connections:
                    # The pool is full but this relay's turn has come: close another relay's
                    # idle connection to make room (one is idle, or this thread would hold it).
                    donor = max(self.relays, key=lambda r: len(r.idle))
                    if not donor.idle:
                        self._returned.wait(min(WAIT_SLICE, deadline - now))
                        continue
                    surplus = donor.idle.pop()
                    donor.open -= 1
                    self._sent_on.pop(id(surplus), None)
                relay.open += 1
                relay.opening += 1
            if surplus is not None:
                surplus.close()
            try:
                connection = self._connect(relay.settings)
                connection.open()
            except SendError as error:
                if not self._refused_connection(relay, error):
                    tried.add(id(relay))
                    errors.append(error)
                continue
            except BaseException:
                with self._lock:  # never leave the slot counted: later sends would wait on it
                    relay.open -= 1
                    relay.opening -= 1
                    self._wake_all()
                raise
            with self._lock:
                relay.opening -= 1
                self._sent_on[id(connection)] = 0
                if relay.failures:
                    log.info("SMTP relay %s is back", relay.settings.name)
                relay.failures = 0
                if relay.probing:
                    self._wake_all()  # the probe waits for the openings to end
                return relay, connection, False, self._begin_probe(relay)

    def _begin_probe(self, relay: _Relay) -> bool:
        """Whether this message is the relay's probe (the first; holds the lock)."""
        if relay.probed or relay.probing:
            return False
        relay.probing = True
        return True

    def _turn(self, usable: list[_Relay]) -> _Relay | None:
        """Whose turn it is, by smooth weighted round robin over the usable relays. A relay
        at its own connection limit with none idle passes its turn on; None (wait) when
        every usable relay is."""
        now = self._clock()
        for relay in usable:
            if relay.limit < relay.cap and now - relay.limited_at >= GROW_AFTER:
                relay.limit += 1
                relay.limited_at = now
        ready = [r for r in usable if r.idle or r.open < r.limit]
        if not ready:
            return None
        chosen = max(ready, key=lambda r: r.current_weight + r.settings.weight)
        for relay in usable:
            relay.current_weight += relay.settings.weight
        chosen.current_weight -= sum(r.settings.weight for r in usable)
        return chosen

    def _wait_for_a_relay(self, deadline: float) -> bool:
        """Wait until the first relay's rest ends, if it ends before `deadline`: a hiccup
        (a relay's limit met at an unlucky moment) costs a second, not a retry of the batch.
        False when no rest ends in time."""
        with self._lock:
            wake = min(r.rested_until for r in self.relays)
            if self._closed or wake > deadline:
                return False
            while (now := self._clock()) < wake:
                self._lock.wait(wake - now)
            return True

    def _open_total(self) -> int:
        return sum(r.open for r in self.relays)

    def _refused_connection(self, relay: _Relay, error: SendError) -> bool:
        """A new connection failed. A 421 while other connections to the relay are open: it
        limits connections per client, so keep to what it took (True: try again, an open
        one will do). Otherwise (a restart turning everyone away, say) the relay rests
        (False); connections still being opened prove nothing either way."""
        with self._lock:
            relay.open -= 1
            relay.opening -= 1
            others = relay.open - relay.opening  # established: the ones it did take
            if error.code == 421 and others > 0:
                if relay.limit > others:
                    relay.limit = others
                    log.info(
                        "SMTP relay %s takes about %s connections at a time",
                        relay.settings.name,
                        others,
                    )
                relay.limited_at = self._clock()
                self._wake_all()
                return True
            self._rest(relay, error)
            return False

    def _failed(
        self, relay: _Relay, connection: SmtpMailer, error: SendError | None, *, rest: bool
    ) -> None:
        """A connection out of use: closed, its slot freed; with `rest`, the relay rests."""
        with self._lock:
            relay.open -= 1
            self._sent_on.pop(id(connection), None)
            if rest and error is not None:
                self._rest(relay, error)
            else:
                self._wake_all()
        connection.close()

    def _rest(self, relay: _Relay, error: SendError) -> None:
        """Rest the relay, longer after each failure in a row; failures of connections that
        were already under way when it began to rest count once."""
        if not relay.usable(self._clock()):
            return
        relay.failures += 1
        pause = min(REST_LONGEST, REST_FIRST * 2 ** (relay.failures - 1))
        pause *= random.uniform(0.8, 1.2)
        relay.rested_until = self._clock() + pause
        log.warning(
            "SMTP relay %s rests %.0f s after %s", relay.settings.name, pause, str(error)[:120]
        )
        self._wake_all()

    def _wake_all(self) -> None:
        """Wake every waiting thread: something other than a returned connection changed."""
        self._lock.notify_all()
        self._returned.notify_all()

    def _check_in(self, relay: _Relay, connection: SmtpMailer, *, counted: bool = True) -> None:
        """A connection back in the pool after a message (`counted`: one more sent on it):
        kept idle, or closed once it carried SMTP_MESSAGES_PER_CONNECTION or the pool closes."""
        renew = False
        with self._lock:
            carried = self._sent_on.get(id(connection), 0) + int(counted)
            self._sent_on[id(connection)] = carried
            if self._closed or carried >= self.messages_per_connection or not connection.is_open:
                relay.open -= 1
                self._sent_on.pop(id(connection), None)
                renew = True
                self._wake_all()  # a slot is free: a new connection may be opened
            else:
                relay.idle.append(connection)
                self._returned.notify()
        if renew:
            connection.close()
