"""VERP: an envelope sender of each message's own, so that its bounce names the delivery.

With BOUNCE_ADDRESS `bounces@press.example`, a reader's copy of a release leaves with the
envelope sender (MAIL FROM, RFC 5321 §4.1.1.2; the receiver's Return-Path) `bounces+<code>@
press.example`, and any bounce, whatever its body says or leaves out, comes back to that address
(RFC 5321 §4.5.5, RFC 3464 §2.2). The code names one delivery row (release and reader), or one
reader for a notice (a confirmation, a welcome), and carries a signature: a forged bounce cannot
name somebody else's delivery.

The code is lower-case letters and digits, as some mail systems fold the local part's case:
`d<delivery id, base 36>-<80 bits of HMAC-SHA256, base 32>` (`s` instead of `d` for a
reader). The key is derived with itsdangerous from SECRET_KEY and the salt of this purpose
alone; older keys (SECRET_KEY_FALLBACKS) still verify. About 30 characters with "bounces+",
well under the local part's 64 (RFC 5321 §4.5.3.1.1).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from itsdangerous import Signer

SALT = "pressroom.verp"
_MAC_BYTES = 10

Named = Literal["delivery", "subscriber"]
_PREFIX: dict[Named, str] = {"delivery": "d", "subscriber": "s"}
_NAMED = {prefix: named for named, prefix in _PREFIX.items()}


@dataclass(frozen=True)
class VerpTarget:
    """What a VERP address names: a delivery row, or a reader (for notices)."""

    named: Named
    id: int


class VerpAddresses:
    """Makes and reads VERP addresses under one bounce address (`local@domain`).

    `keys`: SECRET_KEY first, then its fallbacks; addresses are made with the first and read
    with any.
    """

    def __init__(self, bounce_address: str, keys: Sequence[str]) -> None:
        local, _, domain = bounce_address.rpartition("@")
        if not local or not domain or "+" in local:
            raise ValueError("a bounce address is local@domain, without '+'")
        self.local = local.lower()
        self.domain = domain.lower()
        self._keys = [
            Signer(key, salt=SALT, digest_method=hashlib.sha256).derive_key() for key in keys
        ]

    def for_delivery(self, delivery_id: int) -> str:
        return self._address("delivery", delivery_id)

    def for_subscriber(self, subscriber_id: int) -> str:
        return self._address("subscriber", subscriber_id)

    def accepts(self, address: str) -> bool:
        """Whether mail to `address` is for the bounce server: the bounce address itself or
        one of its VERP addresses (signed or not: a forged code is read, then ignored)."""
        local, _, domain = address.strip().strip("<>").rpartition("@")
        base, _, _ = local.lower().partition("+")
        return domain.lower() == self.domain and base == self.local

    def read(self, address: str) -> VerpTarget | None:
        """The delivery or reader a VERP address names; None for any other address, a code
        that does not verify, or one in a shape this module never writes."""
        local, _, domain = address.strip().strip("<>").rpartition("@")
        base, plus, code = local.lower().partition("+")
        if not code.isascii():
            return None
        if not plus or base != self.local or domain.lower() != self.domain:
            return None
        body, _, mac = code.partition("-")
        named = _NAMED.get(body[:1])
        if named is None or not body[1:].isalnum() or not body[1:].isascii():
            return None
        try:
            target_id = int(body[1:], 36)
        except ValueError:
            return None
        if any(hmac.compare_digest(mac, self._mac(key, body)) for key in self._keys):
            return VerpTarget(named, target_id)
        return None

    def _address(self, named: Named, target_id: int) -> str:
        if target_id < 1:
            raise ValueError("ids are positive")
        body = _PREFIX[named] + _base36(target_id)
        return f"{self.local}+{body}-{self._mac(self._keys[0], body)}@{self.domain}"

    @staticmethod
    def _mac(key: bytes, body: str) -> str:
        digest = hmac.new(key, body.encode(), hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.b32encode(digest).decode().lower()


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while number:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
    return out
