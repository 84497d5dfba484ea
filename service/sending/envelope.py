"""Each message's envelope sender (MAIL FROM, RFC 5321 §4.1.1.2), where its bounce goes.

With BOUNCE_ADDRESS set, every reader's copy of a release and every notice leaves with a VERP
address of its own (domain.verp), and a test copy with the bounce address itself; unset, all
leave with MAIL_FROM's address, as before.
"""

from __future__ import annotations

from service.config import Settings
from service.domain.verp import VerpAddresses


class EnvelopeSenders:
    def __init__(self, mail_from: str, verp: VerpAddresses | None = None) -> None:
        """`mail_from`: MAIL_FROM as configured (the transport takes the bare address out);
        `verp`: the addresses under BOUNCE_ADDRESS, or None."""
        self.mail_from = mail_from
        self.verp = verp

    @classmethod
    def from_settings(cls, settings: Settings) -> EnvelopeSenders:
        keys = [settings.secret_key, *settings.secret_key_fallbacks]
        verp = VerpAddresses(settings.bounce_address, keys) if settings.bounce_address else None
        return cls(settings.mail_from, verp)

    def for_delivery(self, delivery_id: int) -> str:
        """A reader's copy of a release: its delivery row's id."""
        return self.verp.for_delivery(delivery_id) if self.verp else self.mail_from

    def for_subscriber(self, subscriber_id: int) -> str:
        """A notice (confirmation, welcome, invitation) to this reader."""
        return self.verp.for_subscriber(subscriber_id) if self.verp else self.mail_from

    @property
    def plain(self) -> str:
        """A message that is no reader's (a test copy to press staff)."""
        if self.verp is None:
            return self.mail_from
        return f"{self.verp.local}@{self.verp.domain}"
