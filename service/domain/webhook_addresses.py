"""Which network addresses outgoing webhooks may go to (README "Outgoing webhooks").

Unless WEBHOOK_ALLOW_PRIVATE is set, a receiver must be on the public internet: never
loopback, a private range (RFC 1918, fc00::/7), link-local (169.254.0.0/16, where cloud
metadata services answer; fe80::/10), shared address space (100.64.0.0/10), multicast,
reserved or unspecified. An IPv6 address that carries an IPv4 one (IPv4-mapped ::ffff:a.b.c.d,
NAT64 64:ff9b::/96, 6to4 2002::/16) is judged by the IPv4 address inside it.

Registration refuses such addresses written literally in the URL (literal_host_refused); the
POST itself checks the address it connects to (service/sending/webhook_http.py), which is the
check a DNS name cannot dodge.
"""

from __future__ import annotations

import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# RFC 6761: names that always mean this machine, whatever a resolver says.
_LOCAL_NAMES = ("localhost", "localhost.")


def parse(text: str) -> IPAddress | None:
    """`text` as an IP address (IPv6 with or without its %zone), or None when it is not one.
    The legacy IPv4 spellings a resolver also takes (127.1, 0x7f000001, 2130706433) count."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if text and all(c in "0123456789abcdefxABCDEFX." for c in text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def _carried(address: IPAddress) -> list[IPAddress]:
    """The addresses to judge. An IPv4-mapped address (a dual-stack socket's peer is written
    so) and a NAT64 one (an IPv6-only host's way to IPv4) stand for their IPv4 address alone;
    a 6to4 address is judged as itself and as the IPv4 address it carries."""
    if not isinstance(address, ipaddress.IPv6Address):
        return [address]
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address in _NAT64:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    if address.sixtofour is not None:
        return [address, address.sixtofour]
    return [address]


def _public(address: IPAddress) -> bool:
    return address.is_global and not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def allowed(address: IPAddress | str, *, allow_private: bool) -> bool:
    """Whether a webhook may connect to `address` (an address object, or its text as
    getaddrinfo and getpeername give it). Text that is no address is not allowed."""
    if allow_private:
        return True
    found = parse(address) if isinstance(address, str) else address
    if found is None:
        return False
    return all(_public(each) for each in _carried(found))


def literal_host_refused(host: str, *, allow_private: bool) -> bool:
    """Whether a URL's host (as urlsplit's `hostname` gives it: lower case, no brackets) is
    an address, or a name that always means this machine, that a webhook may not go to."""
    if allow_private:
        return False
    if host in _LOCAL_NAMES or host.rstrip(".").endswith(".localhost"):
        return True
    address = parse(host)
    return address is not None and not allowed(address, allow_private=False)
