"""How much of a reader's IP address the consent record keeps (CONSENT_IP_PRECISION).

The setting is two prefix lengths, IPv4 then IPv6: `24,48` (the default) keeps 192.0.2.0/24 of
192.0.2.77 and 2001:db8:1::/48 of 2001:db8:1:2::5, enough to tell a country or a provider and
not the household. `full` keeps whole addresses (`32,128`), `none` keeps no address (`0,0`).
An IPv4 address written as IPv6 (::ffff:192.0.2.77) is cut as IPv4.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

DEFAULT = "24,48"
_NAMED = {"full": (32, 128), "none": (0, 0)}


@dataclass(frozen=True)
class IpPrecision:
    ipv4_bits: int = 24  # 0 to 32
    ipv6_bits: int = 48  # 0 to 128

    @classmethod
    def parse(cls, text: str) -> IpPrecision:
        """`24,48`, `full` or `none`; raises ValueError with a sentence saying what is wrong."""
        spelled = text.strip().lower()
        if spelled in _NAMED:
            return cls(*_NAMED[spelled])
        parts = [part.strip() for part in spelled.split(",")]
        if len(parts) != 2 or not all(part.isdigit() for part in parts):
            raise ValueError("two prefix lengths, IPv4 then IPv6, like 24,48; or full or none")
        ipv4, ipv6 = int(parts[0]), int(parts[1])
        if ipv4 > 32 or ipv6 > 128:
            raise ValueError("an IPv4 prefix is 0 to 32 bits and an IPv6 prefix 0 to 128")
        return cls(ipv4, ipv6)

    def truncate(self, ip: str | None) -> str | None:
        """The part of `ip` kept: the address itself when kept whole, else its network
        (`192.0.2.0/24`); None for no address, one not kept at all, or one that is no IP."""
        if not ip:
            return None
        try:
            address = ipaddress.ip_address(ip.strip())
        except ValueError:
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        bits = self.ipv4_bits if address.version == 4 else self.ipv6_bits
        if bits == 0:
            return None
        if bits == address.max_prefixlen:
            return str(address)
        return str(ipaddress.ip_network(f"{address}/{bits}", strict=False))
