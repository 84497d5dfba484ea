"""Whose fault is a refusal: the reader's address, or the relay's view of us and our message.

A relay that refuses one reader says something about that reader; a relay that refuses
everyone, or refuses the message itself, says something about us. Blaming readers for the
second kind wipes the list (every reader suppressed after a few releases), so a refusal counts
against a reader only when it names them, or when it differs from what the others get:

- a message-level refusal pauses the send at once: any refusal of MAIL FROM, a status of class
  5.3 (mail system) or 5.6 (media, content) (RFC 3463 §3.5, §3.7), or any refusal at DATA that
  does not name the mailbox (one recipient per transaction: DATA is about the message);
- so does a refusal to relay ("Relay access denied", "relaying denied", "relay not
  permitted"): it is about our right to send through that server, never about a mailbox;
- every other refusal is held back, unjudged, until the next message gets through. Then it
  differed from what others got, and the reader is blamed for it;
- the same refusal for several recipients at several domains in a row (addresses, domains and
  ids masked) is the relay's answer to everyone: the send pauses, and the held readers are
  given back unblamed. Refusals that name the mailbox (classes 5.1 addressing and 5.2 mailbox,
  RFC 3463 §3.2-3.3) need a longer run than the others, since dead addresses do cluster in an
  old list; so does a long run of refusals with nobody getting through, whatever they say;
- a reader given back unblamed by such a pause is not counted towards the next pattern: after
  a resume their refusal, if it comes again while others get through, is theirs. So a run of
  genuinely dead addresses can pause a send once, never again at every resume.

Sources: RFC 5321 §4.2 (reply codes), RFC 3463 (enhanced status codes); Mailman 3 bug #624
(content refusals scored against readers).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

# At the start of a reply line (RFC 2034 §4, RFC 3463 §2), not anywhere: "[10.5.1.2]" is an IP.
_ENHANCED = re.compile(r"^[\s-]*([245])\.(\d{1,3})\.(\d{1,3})\b", re.MULTILINE)
_ADDRESS = re.compile(r"<[^<>]*>|[^\s<>@]+@[^\s<>@]+")
_RELAY = re.compile(
    r"\brelay(ing)?\b.*\b(denied|not permitted|not allowed|prohibited)\b|"
    r"\bunable to relay\b|\bnot allowed to relay\b",
    re.IGNORECASE,
)
_ID = re.compile(r"[\w.\-/:\[\]()+=]*\d[\w.\-/:\[\]()+=]*")

# What a delivery row keeps when the relay lacks SMTPUTF8 for an address beyond ASCII
# (RFC 6531): not a refusal by anyone, so neither the reader nor the send is blamed.
NO_SMTPUTF8 = (
    "SMTPUTF8 needed: the address has letters beyond ASCII before the @ (RFC 6531) "
    "and the mail server does not offer SMTPUTF8"
)
SAME_REFUSAL_STRIKES = 3  # the same refusal, not naming the mailbox, this many times in a row
SAME_MAILBOX_REFUSAL_STRIKES = 10  # the same "no such mailbox" this many times in a row
PATTERN_DOMAINS = 2  # ... at this many domains at least: one domain's answer is that domain's
REFUSAL_RUN_LIMIT = 20  # refusals of any kind in a row, nobody getting through


class Stage(enum.StrEnum):
    """The SMTP command a reply answered (RFC 5321 §3.3)."""

    SESSION = "session"  # connection, greeting, EHLO, STARTTLS, AUTH
    MAIL = "mail"
    RCPT = "rcpt"
    DATA = "data"


@dataclass(frozen=True)
class Reply:
    """A server's refusal: the reply code (0 when no reply came), its text, and the stage."""

    code: int
    text: str
    stage: Stage

    def __str__(self) -> str:
        """The reply as a server wrote it ("550 5.1.1 No such user"): what a row and a pause
        keep as their reason."""
        return f"{self.code} {self.text}".strip()

    @property
    def enhanced(self) -> str:
        """The enhanced status code (RFC 3463) at the start of a reply line, of the reply
        code's class; "" when the server gave none."""
        for found in _ENHANCED.finditer(self.text):
            if not self.code or found.group(1) == str(self.code)[0]:
                return ".".join(found.groups())
        return ""

    @property
    def names_mailbox(self) -> bool:
        """Classes X.1 (addressing) and X.2 (mailbox): about this recipient's address."""
        return self.enhanced[1:3] in (".1", ".2")

    @property
    def about_the_message(self) -> bool:
        """Refused whoever the recipient: the sender, the message, or the mail system."""
        if self.stage in (Stage.MAIL, Stage.SESSION):
            return True
        if self.enhanced[1:3] in (".3", ".6") or _RELAY.search(self.text):
            return True
        return self.stage is Stage.DATA and not self.names_mailbox

    def signature(self, address: str) -> str:
        """The reply with everything that differs per recipient or per try masked: any
        address or <...> token, the recipient's domain as a whole name, and tokens holding
        digits (queue ids, timestamps, IPs), but not the reply code and enhanced status."""
        text = _ADDRESS.sub("*", self.text)
        domain = address.rpartition("@")[2]
        if domain:
            text = re.sub(rf"(?<![\w.-]){re.escape(domain)}(?![\w-])", "*", text, flags=re.I)
        text = _ENHANCED.sub("", text, count=1) if self.enhanced else text
        text = _ID.sub("#", text)
        return f"{self.code} {self.enhanced} {' '.join(text.lower().split())}"


@dataclass(frozen=True)
class _Held(Generic[T]):
    delivery: T
    reply: Reply
    signature: str
    domain: str
    counts: bool  # towards a pattern: not for a reader a pattern gave back before


@dataclass
class RefusalJudge(Generic[T]):
    """Weighs one sender's stream of refusals, in order. Feed it every permanent refusal
    (`refused`) and every message the server took (`delivered`); it answers who to blame,
    and when the refusals are the relay's answer to everyone.

    `T` is whatever identifies a delivery to the caller.
    """

    strikes: int = SAME_REFUSAL_STRIKES
    mailbox_strikes: int = SAME_MAILBOX_REFUSAL_STRIKES
    domains: int = PATTERN_DOMAINS
    run_limit: int = REFUSAL_RUN_LIMIT
    _held: list[_Held[T]] = field(default_factory=list)
    _delivered: bool = False

    def refused(
        self, delivery: T, address: str, reply: Reply, *, given_back_before: bool = False
    ) -> bool:
        """Hold a refusal back; True when it shows the refusal is for everyone (pause the
        send: `release_held()` then gives back every held delivery, this one included).
        `given_back_before`: this delivery was given back unblamed by an earlier pattern, so
        it does not count towards one now (else a run of dead addresses pauses every resume).
        """
        held = _Held(
            delivery,
            reply,
            reply.signature(address),
            address.rpartition("@")[2].lower(),
            counts=not given_back_before,
        )
        self._held.append(held)
        if reply.about_the_message:
            return True
        counting = [h for h in self._held if h.counts]
        if not held.counts:
            return False
        if len(counting) >= self.run_limit:
            return True
        same = [h for h in counting if h.signature == held.signature]
        strikes = self.mailbox_strikes if reply.names_mailbox else self.strikes
        return len(same) >= strikes and len({h.domain for h in same}) >= self.domains

    def delivered(self) -> list[tuple[T, Reply]]:
        """A message got through: the refusals held until now differ from what others get,
        and count against their readers. Returns them, and holds nothing any more."""
        self._delivered = True
        return self.release_held()

    def ends_unjudged(self) -> bool:
        """At the end of a batch in which nothing got through: whether the refusals held,
        two or more, all the same and counting, are the relay's answer to everyone (a batch
        too small to reach the strikes, like the last of a send)."""
        counting = [h for h in self._held if h.counts]
        return (
            not self._delivered
            and len(counting) >= 2
            and len(counting) == len(self._held)
            and len({h.signature for h in counting}) == 1
        )

    def release_held(self) -> list[tuple[T, Reply]]:
        """The held refusals, unjudged; holds nothing any more."""
        held = [(h.delivery, h.reply) for h in self._held]
        self._held = []
        return held

    @property
    def holding(self) -> list[T]:
        return [h.delivery for h in self._held]

    @property
    def pattern(self) -> Reply | None:
        """The refusal that made the pattern (the last held), if any is held."""
        return self._held[-1].reply if self._held else None
