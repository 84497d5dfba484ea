"""A DNS server on 127.0.0.1 (dnslib) answering from a dict, for the deliverability check:
DNS_RESOLVER points at it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dnslib import MX, QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from service.embedded_redis import free_port

Zone = dict[tuple[str, str], list[str]]  # (name, "TXT" | "MX") -> records ("10 mx.host" for MX)


class _ZoneResolver(BaseResolver):
    def __init__(self, zone: Zone) -> None:
        self.zone = {(name.lower(), kind): values for (name, kind), values in zone.items()}

    def resolve(self, request, handler):  # type: ignore[no-untyped-def]
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        kind = QTYPE[request.q.qtype]
        if not any(n == name for n, _ in self.zone):
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for value in self.zone.get((name, kind), []):
            if kind == "TXT":
                chunks = [value[i : i + 255] for i in range(0, len(value), 255)]
                reply.add_answer(RR(name, QTYPE.TXT, rdata=TXT(chunks), ttl=60))
            elif kind == "MX":
                preference, host = value.split()
                reply.add_answer(RR(name, QTYPE.MX, rdata=MX(host, int(preference)), ttl=60))
        return reply


@contextmanager
def dns_server(zone: Zone) -> Iterator[str]:
    """Serves `zone` over UDP until the block ends; yields its `host:port`."""
    port = free_port()
    quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
    server = DNSServer(_ZoneResolver(zone), port=port, address="127.0.0.1", tcp=False, logger=quiet)
    server.start_thread()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop()
