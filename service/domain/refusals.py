"""Whose fault is a refusal: the reader's address, or the relay's view of us and our message.

A relay that refuses one reader says something about that reader; a relay that refuses
everyone, or refuses the message itself, says something about us. Blaming readers for the
second kind wipes the list (every reader suppressed after a few releases), so a refusal counts
against a reader only when it names them, or when it differs from what the others get:

- a message-level refusal pauses the send at once: any refusal of MAIL FROM, a status of class
  5.3 (mail system) or 5.6 (media, content) (RFC 3463 §3.5, §3.7), or any refusal at DATA that
  does not name the mailbox (one recipient per transaction: DATA is about the message);
- every other refusal is held back, unjudged, until the next message gets through. Then it
  differed from what others got, and the reader is blamed for it;
- the same refusal for several recipients in a row (addresses, domains and ids masked) is the
  relay's answer to everyone: the send pauses, and the held readers are given back unblamed.
  Refusals that name the mailbox (classes 5.1 addressing and 5.2 mailbox, RFC 3463 §3.2-3.3)
  need a longer run than the others, since dead addresses do cluster in an old list.

Sources: RFC 5321 §4.2 (reply codes), RFC 3463 (enhanced status codes); Mailman 3 bug #624
(content refusals scored against readers).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_ADDRESS = re.compile(r"<?[^\s<>@]+@[^\s<>@]+>?")
_ID = re.compile(r"[\w.\-/:\[\]()+=]*\d[\w.\-/:\[\]()+=]*")

SAME_REFUSAL_STRIKES = 3  # the same refusal, not naming the mailbox, this many times in a row
SAME_MAILBOX_REFUSAL_STRIKES = 10  # the same "no such mailbox" this many times in a row
REFUSAL_RUN_LIMIT = 20  # refusals of any kind in a row, nobody getting through


class Stage(enum.StrEnum):
    """The SMTP command a reply answered (RFC 5321 §3.3)."""

    SESSION = "session"  # connection, greeting, EHLO, STARTTLS, AUTH
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"


class Blame(enum.Enum):
    """What a refusal that counts against a reader does to them."""

    SUPPRESS = "suppress"  # the mailbox does not exist: no more mail to it, at once
    SCORE = "score"  # one hard bounce; HARD_BOUNCE_LIMIT of them mark the address bounced
    NONE = "none"  # this delivery fails, the reader is not scored (a policy refusal)


@dataclass(frozen=True)
class Reply:
    """A server's refusal: the reply code (0 when no reply came), its text, and the stage."""

    code: int
    text: str
    stage: Stage

    @property
    def enhanced(self) -> str:
        """The enhanced status code (RFC 3463), "" when the server gave none."""
        found = _ENHANCED.search(self.text)
        return found.group(0) if found else ""

    @property
    def names_mailbox(self) -> bool:
        """Classes X.1 (addressing) and X.2 (mailbox): about this recipient's address."""
        return self.enhanced[1:3] in (".1", ".2")

    @property
    def about_the_message(self) -> bool:
        """Refused whoever the recipient: the sender, the message, or the mail system."""
        if self.stage in (Stage.MAIL, Stage.SESSION):
            return True
        if self.enhanced[1:3] in (".3", ".6"):
            return True
        return self.stage is Stage.DATA and not self.names_mailbox

    @property
    def blame(self) -> Blame:
        status = self.enhanced
        if status in ("5.1.0", "5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10"):
            return Blame.SUPPRESS  # no such mailbox or domain, or a malformed address
        if status[1:3] == ".7":
            return Blame.NONE  # a policy refusal says nothing about the mailbox
        return Blame.SCORE

    def signature(self, address: str) -> str:
        """The reply with everything that differs per recipient or per try masked: the
        recipient's address, local part and domain, any address, and tokens holding digits
        (queue ids, timestamps, IPs), but not the reply code and enhanced status."""
        text = self.text
        local, _, domain = address.rpartition("@")
        for part in (address, local, domain):
            if part:
                text = re.sub(re.escape(part), "*", text, flags=re.IGNORECASE)
        text = _ADDRESS.sub("*", text)
        text = _ID.sub("#", text.replace(self.enhanced, "ENHANCED", 1) if self.enhanced else text)
        return f"{self.code} {self.enhanced} {' '.join(text.lower().split())}"


@dataclass
class RefusalJudge(Generic[T]):
    """Weighs one sender's stream of refusals, in order. Feed it every permanent refusal
    (`refused`) and every message the server took (`delivered`); it answers who to blame,
    and when the refusals are the relay's answer to everyone.

    `T` is whatever identifies a delivery to the caller.
    """

    strikes: int = SAME_REFUSAL_STRIKES
    mailbox_strikes: int = SAME_MAILBOX_REFUSAL_STRIKES
    run_limit: int = REFUSAL_RUN_LIMIT
    _held: list[tuple[T, Reply, str]] = field(default_factory=list)

    def refused(self, delivery: T, address: str, reply: Reply) -> bool:
        """Hold a refusal back; True when it shows the refusal is for everyone (pause the
        send: `release_held()` then gives back every held delivery, this one included)."""
        signature = reply.signature(address)
        self._held.append((delivery, reply, signature))
        if reply.about_the_message or len(self._held) >= self.run_limit:
            return True
        same = sum(1 for _, _, held in self._held if held == signature)
        return same >= (self.mailbox_strikes if reply.names_mailbox else self.strikes)

    def delivered(self) -> list[tuple[T, Reply]]:
        """A message got through: the refusals held until now differ from what others get,
        and count against their readers. Returns them, and holds nothing any more."""
        return self.release_held()

    def release_held(self) -> list[tuple[T, Reply]]:
        """The held refusals, unjudged; holds nothing any more."""
        held = [(delivery, reply) for delivery, reply, _ in self._held]
        self._held = []
        return held

    @property
    def holding(self) -> list[T]:
        return [delivery for delivery, _, _ in self._held]
