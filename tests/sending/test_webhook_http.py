"""The outgoing webhook's POST itself (service/sending/webhook_http.py) against real sockets:
an attempt ends by its deadline whatever the receiver does (dripping its answer included), and
reads at most MAX_ANSWER of a body; internal addresses are refused before a connection is
made, however they are written, unless allowed."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from service.domain import webhook_outbox
from service.sending import webhook_http
from tests.webhook_receiver import Receiver

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
DRIP_FOR = 15.0  # seconds: longer than any deadline here, shorter than a hung test


@contextmanager
def raw_receiver(answer: bytes, *, drip: bytes = b"", every: float = 0.2) -> Iterator[str]:
    """A receiver on a socket of its own: reads the request, sends `answer`, then `drip` a
    byte at a time, one each `every` seconds (for DRIP_FOR seconds at most), or, for `drip`
    b"0", as fast as it can until the client goes; with no `drip`, nothing more (for 30 s).
    Its URL."""
    server = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            connection.settimeout(30)
            try:
                connection.recv(65536)
                connection.sendall(answer)
                if not drip:
                    done.wait(30)
                    return
                if drip == b"0":
                    while not done.is_set():
                        connection.sendall(b"0" * 65536)
                    return
                stop = time.monotonic() + DRIP_FOR
                for byte in itertools.cycle(drip):
                    if done.wait(every) or time.monotonic() > stop:
                        return
                    connection.sendall(bytes([byte]))
            except OSError:
                return  # the client went: what these tests want

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hooks"
    finally:
        done.set()
        thread.join(timeout=35)
        server.close()


def post(
    url: str, *, allow_private: bool = True, deadline: float = 1.0
) -> tuple[str | None, float]:
    """The outcome of one POST to `url`, and the seconds it took."""
    started = time.monotonic()
    outcome = webhook_http.post(
        url,
        {"content-type": "application/json"},
        b"{}",
        allow_private=allow_private,
        deadline_seconds=deadline,
    )
    return outcome, time.monotonic() - started


def test_the_deadline_is_well_inside_the_outboxs_lease() -> None:
    """An attempt outlasting its lease would be made a second time, alongside."""
    lease = webhook_outbox.LEASE.total_seconds()
    assert webhook_http.DEADLINE <= 20 and lease / 3 >= webhook_http.DEADLINE


def test_a_receiver_dripping_its_answers_head_is_cut_off_at_the_deadline() -> None:
    """Each byte comes well within the per-operation timeout: only the deadline ends it."""
    with raw_receiver(HEAD, drip=b"x-slow: yes\r\n") as url:
        outcome, took = post(url, deadline=1.0)
    assert outcome == "no answer within 1 s"
    assert took < 2.0


def test_a_receiver_dripping_its_body_after_a_200_has_taken_the_event_by_the_deadline() -> None:
    with raw_receiver(HEAD + b"content-length: 100000\r\n\r\n", drip=b"ok") as url:
        outcome, took = post(url, deadline=1.0)
    assert outcome is None, "the status is the answer"
    assert took < 2.0


def test_a_large_body_is_read_no_further_than_max_answer() -> None:
    with raw_receiver(HEAD + b"content-length: 1000000000\r\n\r\n", drip=b"0") as url:
        outcome, took = post(url, deadline=10.0)
    assert outcome is None
    assert took < 5.0, "a gigabyte was not read"


def test_a_receiver_that_never_answers_is_cut_off_at_the_deadline() -> None:
    with raw_receiver(b"", drip=b"") as url:
        outcome, took = post(url, deadline=0.5)
    assert outcome == "no answer within 0.5 s"
    assert took < 1.5


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "127.1", "2130706433"],
    ids=["loopback", "a-name-for-loopback", "ipv4-mapped", "short-form", "decimal-form"],
)
def test_a_loopback_receiver_is_refused_unless_allowed_and_learns_nothing(host: str) -> None:
    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        url = f"http://{host}:{port}/hooks"
        refused, took = post(url, allow_private=False)
        assert refused == webhook_http.NOT_ALLOWED == "address not allowed"
        assert receiver.requests() == [], "not even a connection"
        assert post(url, allow_private=True)[0] is None
        assert len(receiver.requests()) == 1
    assert took < 1.0


def test_an_internal_port_nobody_listens_on_reads_the_same_as_one_in_use() -> None:
    """The desk's last error must not let staff map internal ports."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with Receiver() as receiver:
        open_port = receiver.server.server_address[1]
        seen = {
            post(f"http://127.0.0.1:{port}/", allow_private=False)[0]
            for port in (closed, open_port)
        }
    assert seen == {"address not allowed"}
    assert post(f"http://127.0.0.1:{closed}/", allow_private=True)[0] != "address not allowed"


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::1]/",
        "http://0.0.0.0/",
        "https://[fe80::1]/",
    ],
)
def test_internal_addresses_are_refused_without_a_connection(url: str) -> None:
    outcome, took = post(url, allow_private=False, deadline=5.0)
    assert outcome == "address not allowed"
    assert took < 0.5, "refused before connecting, not after a timeout"


def test_only_http_and_https_are_posted_to() -> None:
    assert post("ftp://crm.example/hooks")[0] == "no answer: not an http(s) URL"
