"""The relay pool (sending.relay_pool) against real aiosmtpd relays: many connections at once,
several relays by weight, a relay that is down, one that limits connections, one that hangs up
after so many messages, with PIPELINING and without. Nothing is lost, nothing sent twice."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from service.sending.relay_pool import FAR_RELAY, REPLY_GRACE, RelayPool
from service.sending.sender_threads import SenderThreads
from service.sending.transport import Outcome, Sent, SmtpMailer
from service.smtp_relays import parse_relays
from tests.sending.relays import Relay, RelayBehaviour

SENDER = "Pressroom <noreply@press.example>"


def message(to: str, n: int) -> bytes:
    return (
        f"From: {SENDER}\r\nTo: {to}\r\nSubject: Melding {n}\r\n\r\n"
        f"Linje en\r\n.punktum først\r\n..to punktum\r\nslutt {n}\r\n"
    ).encode()


def send_all(pool: RelayPool, count: int, *, threads: int = 8, prefix: str = "r") -> list[Outcome]:
    addresses = [f"{prefix}{n}@mail.example" for n in range(count)]
    send: Callable[[tuple[int, str]], Outcome] = lambda item: pool.deliver(  # noqa: E731
        SENDER, [item[1]], message(item[1], item[0])
    )
    with ThreadPoolExecutor(threads) as executor:
        return list(executor.map(send, enumerate(addresses)))


def pool_for(
    url: str,
    *,
    connections: int = 8,
    per_connection: int = 100,
    clock: Callable[[], float] = time.monotonic,
) -> RelayPool:
    return RelayPool(
        parse_relays(url),
        connections=connections,
        messages_per_connection=per_connection,
        clock=clock,
    )


def test_many_connections_at_once_deliver_each_message_once() -> None:
    with Relay(RelayBehaviour(latency=0.01)) as relay:
        pool = pool_for(relay.url(), connections=8)
        outcomes = send_all(pool, 300, threads=8)
        pool.close()
    assert all(isinstance(o, Sent) for o in outcomes)
    assert relay.log.counts() == {f"r{n}@mail.example": 1 for n in range(300)}
    assert 2 <= relay.log.most_sessions <= 8


def test_messages_spread_over_the_relays_by_weight() -> None:
    with Relay() as heavy, Relay() as light:
        pool = pool_for(f"{heavy.url(weight=3)},{light.url(weight=1)}", connections=8)
        outcomes = send_all(pool, 2000, threads=8)
        pool.close()
    assert all(isinstance(o, Sent) for o in outcomes)
    assert len(heavy.log.received) + len(light.log.received) == 2000
    assert abs(len(heavy.log.received) - 1500) <= 150  # within 10 %
    assert abs(len(light.log.received) - 500) <= 50


def test_a_relay_that_turns_everyone_away_rests_and_the_other_carries_the_send() -> None:
    # The pool's clock stands still, so a rest outlasts the send however slow this machine
    # is: only the connections opened before the first refusal reach the relay that is down.
    with Relay(RelayBehaviour(refuse_all=True)) as down, Relay() as up:
        pool = pool_for(f"{down.url()},{up.url()}", connections=8, clock=lambda: 1000.0)
        outcomes = send_all(pool, 400, threads=8)
        pool.close()
    assert all(isinstance(o, Sent) for o in outcomes)
    assert up.log.counts() == {f"r{n}@mail.example": 1 for n in range(400)}
    assert not down.log.received
    assert 1 <= down.log.turned_away <= 8  # rested, not asked again for every message


def test_every_relay_down_is_a_systemic_answer_for_the_batch_to_give_back() -> None:
    with Relay(RelayBehaviour(refuse_all=True)) as down:
        pool = pool_for(down.url(), connections=4)
        first, second = send_all(pool, 2, threads=1)
        pool.close()
    assert not isinstance(first, Sent) and first.systemic and first.code == 421
    assert not isinstance(second, Sent) and second.systemic


def test_more_connections_than_the_relay_takes_keeps_to_what_it_takes() -> None:
    with Relay(RelayBehaviour(max_sessions=3, latency=0.005)) as relay:
        pool = pool_for(relay.url(), connections=12)
        outcomes = send_all(pool, 300, threads=12)
        pool.close()
    assert all(isinstance(o, Sent) for o in outcomes)
    assert relay.log.counts() == {f"r{n}@mail.example": 1 for n in range(300)}
    assert relay.log.turned_away >= 1  # it did say "too many"


def test_a_relay_that_hangs_up_after_every_50_messages_loses_and_doubles_nothing() -> None:
    with (
        Relay(RelayBehaviour(close_after=50)) as hangs_up,
        Relay(RelayBehaviour(busy_after=50)) as says_421,
    ):
        for relay in (hangs_up, says_421):
            pool = pool_for(relay.url(), connections=4)
            outcomes = send_all(pool, 500, threads=4)
            pool.close()
            assert all(isinstance(o, Sent) for o in outcomes)
            assert relay.log.counts() == {f"r{n}@mail.example": 1 for n in range(500)}


def test_connections_are_renewed_after_so_many_messages() -> None:
    with Relay() as relay:
        pool = pool_for(relay.url(), connections=1, per_connection=10)
        send_all(pool, 50, threads=1)
        pool.close()
    assert len(relay.log.received) == 50
    assert relay.log.most_sessions == 1


def test_pipelining_sends_the_same_bytes_in_fewer_round_trips() -> None:
    with Relay(RelayBehaviour(pipelining=True)) as offers, Relay() as lacks:
        for relay in (offers, lacks):
            pool = pool_for(relay.url(), connections=1)
            assert all(isinstance(o, Sent) for o in send_all(pool, 20, threads=1))
            pool.close()
    assert [m.raw for m in offers.log.received] == [m.raw for m in lacks.log.received]
    assert all(offers.log.pipelined) and not any(lacks.log.pipelined)


def test_a_far_relay_gets_the_next_message_before_the_last_ones_reply() -> None:
    """RFC 2920 §3.1: the next MAIL, RCPT and DATA may follow an end of data unanswered, so a
    message costs one round trip, not two. Every message arrives once, byte for byte as over
    a relay without PIPELINING, and each is reported taken once (on_sent), before the next
    message's content goes. A near relay (under FAR_RELAY) is answered one message at a time."""
    taken: list[str] = []

    def send(pool: RelayPool, count: int) -> list[Outcome]:
        def one(n: int) -> Outcome:
            to = f"r{n}@mail.example"
            return pool.deliver(SENDER, [to], message(to, n), lambda: taken.append(to))

        with ThreadPoolExecutor(4) as executor:
            return list(executor.map(one, range(count)))

    far = RelayBehaviour(pipelining=True, latency=2 * FAR_RELAY)
    with Relay(far) as relay, Relay(RelayBehaviour(pipelining=True)) as near, Relay() as plain:
        for each in (relay, near, plain):
            pool = pool_for(each.url(), connections=2)
            outcomes = send(pool, 40)
            pool.close()
            assert all(isinstance(o, Sent) for o in outcomes)
    assert any(relay.log.next_behind_data)
    assert not any(near.log.next_behind_data)
    assert sorted(m.raw for m in relay.log.received) == sorted(m.raw for m in plain.log.received)
    assert sorted(taken) == sorted(3 * [f"r{n}@mail.example" for n in range(40)])


def test_a_far_relay_hanging_up_after_a_reply_left_unread_loses_and_doubles_nothing() -> None:
    """The next message's commands went behind the end of data; the relay answered 250 and
    hung up (or answered 421 to the next MAIL): the message is taken, the next goes again over
    a new connection."""
    for behaviour in (
        RelayBehaviour(pipelining=True, latency=2 * FAR_RELAY, close_after=7),
        RelayBehaviour(pipelining=True, latency=2 * FAR_RELAY, busy_after=7),
    ):
        with Relay(behaviour) as relay:
            pool = pool_for(relay.url(), connections=2)
            outcomes = send_all(pool, 60, threads=4)
            pool.close()
        assert all(isinstance(o, Sent) for o in outcomes), outcomes
        assert relay.log.counts() == {f"r{n}@mail.example": 1 for n in range(60)}


def test_a_message_the_relay_cannot_take_for_smtputf8_leaves_no_reply_unread() -> None:
    """An address beyond ASCII, over a far relay without SMTPUTF8, fails before any command
    of its own; the reply of the message before it on the connection is read all the same,
    so that message's sender is not left waiting (it waited for good before)."""

    class SlowToRefuse(SmtpMailer):
        """Holds the connection past REPLY_GRACE before it finds SMTPUTF8 missing, so that
        the sender before it counts on it to read the reply."""

        @staticmethod
        def _utf8_options(connection: smtplib.SMTP) -> list[str]:
            time.sleep(5 * REPLY_GRACE)
            return SmtpMailer._utf8_options(connection)

    far = RelayBehaviour(pipelining=True, latency=10 * FAR_RELAY, smtputf8=False)
    with Relay(far) as relay:
        pool = RelayPool(
            parse_relays(relay.url()),
            connections=1,
            messages_per_connection=100,
            connect=SlowToRefuse,
        )
        executor = SenderThreads(2)  # daemon threads: one left waiting must not hang the run
        try:
            ascii_first = executor.submit(
                pool.deliver, SENDER, ["r1@mail.example"], message("r1@mail.example", 1)
            )
            time.sleep(5 * FAR_RELAY)  # waiting for the connection while r1 goes out
            beyond = executor.submit(
                pool.deliver, SENDER, ["å2@mail.example"], message("å2@mail.example", 2)
            )
            outcomes = [ascii_first.result(timeout=10), beyond.result(timeout=10)]
        finally:
            executor.shutdown(wait=False)
        pool.close()
    assert isinstance(outcomes[0], Sent) and not isinstance(outcomes[1], Sent)
    assert list(relay.log.counts()) == ["r1@mail.example"]


def test_a_near_relay_busy_with_a_burst_of_connections_is_not_taken_for_far() -> None:
    """At the start of a send every connection opens at once and a relay's answers queue
    behind the greetings: the first message measures the distance alone, once the openings
    are done. Taken for far, a near relay got the next message behind each end of data, and
    the handover cost a CPU-bound send a tenth of its rate."""
    judged_far: list[bool] = []
    busy = RelayBehaviour(pipelining=True, busy_ehlo=0.003)
    with Relay(busy) as relay:
        pool = RelayPool(
            parse_relays(relay.url()),
            connections=16,
            messages_per_connection=100,
            on_far=lambda: judged_far.append(True),
        )
        outcomes = send_all(pool, 200, threads=16)
        pool.close()
    assert all(isinstance(o, Sent) for o in outcomes)
    assert relay.log.most_sessions > 1
    assert judged_far == []
    assert pool.relays[0].least_round_trip < FAR_RELAY
