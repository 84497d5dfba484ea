"""The relay pool's bookkeeping under faults, through connections of our own making (the seam
`connect`): a burst of 421 at connect, an error no SMTP reply explains, a line dropped after the
message went. Each once left the pool starved, hung or sending one message many times."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from service.sending.relay_pool import RelayPool
from service.sending.transport import SENT, Outcome, TransientSendError
from service.smtp_relays import SmtpSettings, parse_relays

SENDER = "Pressroom <noreply@press.example>"


class Connection:
    """Stands for SmtpMailer: `opening(self)` runs at open() and may raise."""

    def __init__(self, opening: Callable[[Connection], None]) -> None:
        self.opening = opening
        self.is_open = False

    def open(self) -> None:
        self.opening(self)
        self.is_open = True

    def deliver_leaving_reply(
        self, sender: str, recipients: list[str], data: bytes, *_: object
    ) -> Outcome:
        return SENT

    def close(self) -> None:
        self.is_open = False


def pool_of(make: Callable[[SmtpSettings], Connection], connections: int) -> RelayPool:
    return RelayPool(
        parse_relays("smtp://relay.example"),
        connections=connections,
        messages_per_connection=100,
        connect=make,  # type: ignore[arg-type]
    )


def test_a_421_burst_at_connect_rests_the_relay_and_keeps_its_connection_limit() -> None:
    """A relay restarting turns away all eight connections opened at once: that is no limit
    per client (none of them was taken), so the relay rests and keeps its limit of 8."""
    barrier, calls, lock = threading.Barrier(8), [0], threading.Lock()

    def opening(_: Connection) -> None:
        with lock:
            calls[0] += 1
            first_eight = calls[0] <= 8
        if first_eight:
            barrier.wait(5)
            raise TransientSendError(421, "4.3.2 restarting", systemic=True)

    pool = pool_of(lambda settings: Connection(opening), 8)
    with ThreadPoolExecutor(8) as executor:
        outcomes = list(
            executor.map(lambda i: pool.deliver(SENDER, [f"r{i}@x.example"], b"x"), range(8))
        )
    assert all(outcome is SENT for outcome in outcomes)  # after a rest of about a second
    assert pool.relays[0].limit == 8, f"limit fell to {pool.relays[0].limit}"


def test_an_error_no_reply_explains_frees_its_slot_and_nothing_hangs() -> None:
    def opening(_: Connection) -> None:
        raise UnicodeError("label too long")

    pool = pool_of(lambda settings: Connection(opening), 1)
    for _ in range(2):  # the second would wait forever on a slot the first had leaked
        with pytest.raises(UnicodeError):
            pool.deliver(SENDER, ["a@x.example"], b"x")
    assert (pool.relays[0].open, pool.relays[0].opening) == (0, 0)


def test_a_line_dropped_after_the_message_went_is_not_sent_again_at_once() -> None:
    """The relay may have queued it: the batch is told (systemic, after_data) and gives the
    row back for later; the pool does not replay it over every idle connection."""
    mode, sent, lock = {"drop": False}, [0], threading.Lock()

    class Dropping(Connection):
        def deliver_leaving_reply(
            self, sender: str, recipients: list[str], data: bytes, *_: object
        ) -> Outcome:
            with lock:
                if mode["drop"]:
                    sent[0] += 1
                    self.is_open = False
                    return TransientSendError(
                        0, "the server closed the connection", systemic=True, after_data=True
                    )
            time.sleep(0.05)
            return SENT

    pool = pool_of(lambda settings: Dropping(lambda _: None), 8)
    with ThreadPoolExecutor(8) as executor:
        list(executor.map(lambda i: pool.deliver(SENDER, [f"w{i}@x.example"], b"x"), range(8)))
    assert len(pool.relays[0].idle) == 8
    mode["drop"] = True
    outcome = pool.deliver(SENDER, ["once@x.example"], b"x")
    assert isinstance(outcome, TransientSendError) and outcome.systemic and outcome.after_data
    assert sent[0] == 1
