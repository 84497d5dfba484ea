"""DNS lookups for the deliverability check (dnspython): the system's resolver, or the one
DNS_RESOLVER names (`host:port`), as tests and split-horizon sites need."""

from __future__ import annotations

import dns.exception
import dns.resolver

from service.domain.deliverability import Lookup

TIMEOUT = 5.0  # seconds for one lookup, retries included


def parse_resolver(value: str) -> tuple[str, int]:
    """`host:port` or `host` (port 53); `[v6]:port` for IPv6. ValueError otherwise."""
    text = value.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, "53"
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(value)
    return host, int(port)


def lookup_via(resolver_address: str | None) -> Lookup:
    resolver = dns.resolver.Resolver(configure=resolver_address is None)
    if resolver_address is not None:
        host, port = parse_resolver(resolver_address)
        resolver.nameservers = [host]
        resolver.port = port
    resolver.lifetime = TIMEOUT

    def lookup(name: str, kind: str) -> list[str]:
        try:
            answer = resolver.resolve(name, kind)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as error:
            raise LookupError(type(error).__name__) from None
        if kind == "TXT":
            return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]
        if kind == "MX":
            return [f"{r.preference} {r.exchange.to_text(omit_final_dot=True)}" for r in answer]
        return [r.to_text() for r in answer]

    return lookup
