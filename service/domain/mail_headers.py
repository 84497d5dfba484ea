"""The only way Pressroom writes a mail header line: each function returns one whole header
field as bytes, folded, ending in CRLF.

Nothing a person typed is ever written as it came. A value is either plain printable ASCII
that no receiver can read as anything but itself, or it is encoded here as RFC 2047 encoded
words; a value that merely looks like an encoded word (`=?utf-8?q?...?=`) is encoded too, so
it arrives as the literal text it is. Control characters, line separators and addresses that
are not a plain addr-spec are refused with HeaderError.

Why not `email.message.EmailMessage`: its header registry decodes encoded words found in a
str assigned to a header and folds the decoded text with its raw CR/LF, so a title
`=?utf-8?q?a=0D=0ABcc:_x@y.example?=` became a real Bcc line (issue 9).

Rules: RFC 5322 §2.1.1 (lines at most 78 characters), §2.2 (header fields, folding),
§3.2.3 (atext, dot-atom), §3.4.1 (addr-spec), §3.6.4 (msg-id); RFC 2047 §2 (an encoded word
at most 75 characters, a line holding one at most 76), §5 (where encoded words may stand:
unstructured text (1) and phrases (3), with §5(3)'s restricted Q alphabet); RFC 2919 (List-Id).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, make_msgid

CRLF = b"\r\n"
LINE = 76  # RFC 2047 §2 (lines holding an encoded word); RFC 5322's 78 would allow 2 more
MAX_ENCODED_WORD = 75  # RFC 2047 §2
MAX_LINE = 998  # RFC 5322 §2.1.1, without the CRLF

# C0, DEL, C1, the Unicode line and paragraph separators, and lone surrogates: none of them
# belongs in a header, and some receivers split lines at U+0085, U+2028 and U+2029.
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 §3.6.8 ftext
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"  # RFC 5322 §3.2.3
_DOT_ATOM = rf"{_ATEXT}(?:\.{_ATEXT})*"
_ADDR_SPEC = re.compile(rf"({_DOT_ATOM})@({_DOT_ATOM})")
# RFC 6532 §3.2: atext also holds UTF8-non-ascii; not C1 controls, separators, surrogates,
# nor the format and space characters an address never holds (addresses.INVISIBLE).
_UTF8_ATEXT = (
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u00a1-\u00ac\u00ae-\u1fff\u2070-\u2fff\u3001-\ud7ff"
    r"\ue000-\ufefe\uff00-\U0010ffff]+"
)
_UTF8_ADDR_SPEC = re.compile(rf"{_UTF8_ATEXT}(?:\.{_UTF8_ATEXT})*@({_DOT_ATOM})")
_MSG_ID = re.compile(rf"<{_DOT_ATOM}@{_DOT_ATOM}>")
_LIST_ID = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})+")  # RFC 2919 §2: label "." namespace
_ATOM = re.compile(_ATEXT)
_PRINTABLE_WORDS = re.compile(r"[!-~]+(?: [!-~]+)*")  # printable ASCII, single spaces
_URI = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")  # RFC 3986 §2 characters
_Q_LITERAL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_Q_PREFIX, _B_PREFIX, _SUFFIX = "=?utf-8?q?", "=?utf-8?b?", "?="
_OVERHEAD = len(_Q_PREFIX) + len(_SUFFIX)
MAX_ADDRESS = 254  # RFC 5321 §4.5.3.1.3 path, less its angle brackets


class HeaderError(ValueError):
    """A value we will not write into a header; the message says which and why."""


@dataclass(frozen=True)
class Mailbox:
    """RFC 5322 §3.4 `[display-name] <addr-spec>`, both checked."""

    addr_spec: str
    display_name: str = ""

    @property
    def domain(self) -> str:
        return self.addr_spec.rsplit("@", 1)[1]


def parse_mailbox(text: str) -> Mailbox:
    """`Name <local@domain>`, `"Name, Inc." <local@domain>` or `local@domain` (MAIL_FROM).

    Raises HeaderError unless the address is a plain addr-spec (no comments, no quoted local
    part, no domain literal) and the display name can be written by `mailbox`.
    """
    text = text.strip()
    if text.endswith(">") and "<" in text:
        name, _, address = text[:-1].rpartition("<")
        name = name.strip()
        if len(name) >= 2 and name[0] == name[-1] == '"':
            name = re.sub(r"\\(.)", r"\1", name[1:-1])
        elif "@" in name:
            # Unquoted, a name holding an address is more than one mailbox: "Avis <a@x>,
            # Other <b@y>" would send as b@y, not as the sender it names first.
            raise HeaderError(f"{text[:80]!r} is not one name and address; quote the name")
    else:
        name, address = "", text
    box = Mailbox(addr_spec=check_addr_spec(address.strip()), display_name=name)
    mailbox("From", box)  # the display name must be writable
    return box


def check_addr_spec(address: str) -> str:
    """The address itself if it is a plain ASCII addr-spec (RFC 5322 §3.4.1 dot-atom on
    both sides, at most 254 characters) holding no `=?`; else HeaderError.

    `=?` is refused because some parsers (CPython's among them) decode an encoded word even
    inside a local part, which would let an address carry any text into the header.
    """
    if len(address) > MAX_ADDRESS or _ADDR_SPEC.fullmatch(address) is None or "=?" in address:
        raise HeaderError(f"{address[:80]!r} is not a plain email address (local@domain)")
    return address


def unstructured(name: str, text: str) -> bytes:
    """An unstructured field (Subject, Auto-Submitted, X-...): RFC 5322 §3.2.5, with the text
    as RFC 2047 §5(1) encoded words unless it is plain printable ASCII words that fit a line."""
    _check_name(name)
    _check_text(name, text)
    if not text:
        return f"{name}:".encode("ascii") + CRLF
    if _is_plain(text) and all(len(word) + 1 <= LINE - len(name) - 1 for word in text.split()):
        return _fold(name, text.split(" "))
    return _fold(name, _encoded_words(text, first=LINE - len(name) - 2))


def mailbox(name: str, box: Mailbox) -> bytes:
    """`From: Display Name <local@domain>` (RFC 5322 §3.4), the display name as a phrase
    (RFC 2047 §5(3)); HeaderError for a display name that cannot be written (see `_phrase`)."""
    _check_name(name)
    check_addr_spec(box.addr_spec)
    if not box.display_name:
        return _fold(name, [box.addr_spec])
    return _fold(name, [*_phrase(name, box.display_name), f"<{box.addr_spec}>"])


def check_recipient(address: str) -> str:
    """A recipient's address: as check_addr_spec, but the part before the @ may hold letters
    beyond ASCII (RFC 6532 §3.2, UTF8-non-ascii in atext), written as UTF-8; such a message
    needs SMTPUTF8 (RFC 6531) on its way. The domain stays ASCII (IDNA). Else HeaderError."""
    if address.isascii():
        return check_addr_spec(address)
    if (
        len(address.encode("utf-8")) > MAX_ADDRESS
        or _UTF8_ADDR_SPEC.fullmatch(address) is None
        or "=?" in address
    ):
        raise HeaderError(f"{address[:80]!r} is not a plain email address (local@domain)")
    return address


def address(name: str, addr_spec: str) -> bytes:
    """`To: local@domain`, the bare addr-spec (per recipient: kept to two regex matches);
    UTF-8 when the part before the @ is not ASCII (RFC 6532 §3.2)."""
    _check_name(name)
    return name.encode("ascii") + b": " + check_recipient(addr_spec).encode("utf-8") + CRLF


def list_id(name: str, description: str, list_id: str) -> bytes:
    """RFC 2919 §3 `List-Id: phrase <label.namespace>`; the description as a phrase."""
    _check_name(name)
    if _LIST_ID.fullmatch(list_id) is None or "=?" in list_id:
        raise HeaderError(f"{list_id[:80]!r} is not a list id like releases.example.org")
    words = _phrase(name, description) if description else []
    return _fold(name, [*words, f"<{list_id}>"])


def uris(name: str, *links: str) -> bytes:
    """RFC 2369 §2 `List-Unsubscribe: <uri>, <uri>`: each an absolute URI of RFC 3986
    characters only, holding no `=?` (some parsers decode encoded words inside tokens)."""
    _check_name(name)
    if not links:
        raise HeaderError(f"{name} needs at least one URI")
    for link in links:
        if _URI.fullmatch(link) is None or "=?" in link or ":" not in link:
            raise HeaderError(f"{link[:80]!r} is not a URI we write into {name}")
    return _fold(name, [f"<{link}>," for link in links[:-1]] + [f"<{links[-1]}>"])


def message_id(name: str, value: str) -> bytes:
    """RFC 5322 §3.6.4 `<id-left@id-right>`, both dot-atom-text."""
    _check_name(name)
    if _MSG_ID.fullmatch(value) is None or "=?" in value:
        raise HeaderError(f"{value[:80]!r} is not a message id")
    return _fold(name, [value])


def new_msg_id(domain: str, *, key: str | None = None) -> str:
    """A msg-id of one message's own (RFC 5322 §3.6.4 `<id-left@id-right>`), `domain` being
    MAIL_FROM's: receivers such as Gmail fold messages that share an ID into one.

    `key`: names one delivery; its retries pass the same key (a Celery task's id, which the
    task's retries keep) and get the same ID, so a copy sent twice reads as one. Without a
    key every call gives a new ID (email.utils.make_msgid). HeaderError for a domain that is
    not dot-atom-text.
    """
    if key is None:
        value = make_msgid(domain=domain)
    else:
        value = f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"
    if _MSG_ID.fullmatch(value) is None or "=?" in value:
        raise HeaderError(f"{domain[:80]!r} is not a domain for a message id")
    return value


def date(name: str, moment: datetime) -> bytes:
    """RFC 5322 §3.3 date-time of an aware datetime."""
    _check_name(name)
    if moment.tzinfo is None:
        raise HeaderError("a Date needs a time zone")
    return _fold(name, format_datetime(moment).split(" "))


def structured(name: str, value: str) -> bytes:
    """A value of our own making in a header's own syntax (MIME-Version, Content-Type,
    Content-Transfer-Encoding, List-Unsubscribe-Post): printable ASCII words written as they
    are, folded between words. HeaderError for anything else: such a value is never typed
    by a person, and nothing in it may be encoded or decoded."""
    _check_name(name)
    _check_text(name, value)
    if not _is_plain(value) or max(len(w) for w in value.split(" ")) > MAX_LINE - len(name) - 2:
        raise HeaderError(f"{name}: {value[:80]!r} is not plain printable ASCII")
    return _fold(name, value.split(" "))


def _check_name(name: str) -> None:
    if _NAME.fullmatch(name) is None:
        raise HeaderError(f"{name[:80]!r} is not a header name")


def _check_text(name: str, text: str) -> None:
    if _FORBIDDEN.search(text):
        raise HeaderError(f"{name}: the value holds a control character or line separator")


def _is_plain(text: str) -> bool:
    """Printable ASCII words between single spaces, with no `=?` that could open an
    encoded word (RFC 2047 §2): a receiver reads it back exactly as it stands."""
    return _PRINTABLE_WORDS.fullmatch(text) is not None and "=?" not in text


def _phrase(name: str, text: str) -> list[str]:
    """A display name as RFC 5322 §3.2.5 phrase words (RFC 2047 §5(3)), for `_fold`.

    Printable ASCII stays readable: atoms as they are, anything else in one quoted-string
    (RFC 5322 §3.2.4) whose `=?` is written `=\\?`, so that no parser can find an encoded
    word in it (CPython decodes them even inside quotes). A name with other characters keeps
    its atoms and printable words the same way, and each run of the remaining words becomes
    ONE encoded word: receivers disagree about the space between two adjacent encoded words
    in a phrase (RFC 2047 §6.2 drops it, CPython keeps it), so a run too long for one encoded
    word is refused rather than written in a form that reads back differently.
    """
    _check_text(name, text)
    if not text or text != text.strip(" ") or "  " in text:
        raise HeaderError(
            f"{name}: a display name may not begin or end with a space, nor hold two in a row"
        )
    words = text.split(" ")
    if all(_is_atom(w) for w in words):
        return words
    if _is_plain(text.replace("=?", "")):
        return _quoted(text).split(" ")
    out: list[str] = []
    run: list[str] = []
    for word in [*words, None]:
        readable = word is None or word.isascii()
        if readable and run:
            encoded = _one_encoded_word(" ".join(run))
            if len(encoded) > min(MAX_ENCODED_WORD, LINE - len(name) - 2):
                raise HeaderError(
                    f"{name}: {' '.join(run)[:40]!r} is too long to encode as one word; "
                    "shorten the display name or put ASCII words between its words"
                )
            out.append(encoded)
            run = []
        if word is None:
            break
        if not readable:
            run.append(word)
        else:
            out.append(word if _is_atom(word) else _quoted(word))
    return out


def _is_atom(word: str) -> bool:
    return _ATOM.fullmatch(word) is not None and "=?" not in word


def _quoted(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("=?", "=\\?")
    return f'"{escaped}"'


def _q_piece(char: str) -> str:
    if char == " ":
        return "_"
    data = char.encode("utf-8")
    if len(data) == 1 and data[0] in _Q_LITERAL:
        return char
    return "".join(f"={byte:02X}" for byte in data)


def _one_encoded_word(text: str) -> str:
    """The shorter of the Q (RFC 2047 §4.2, §5(3) alphabet) and B (§4.1) forms."""
    q = _Q_PREFIX + "".join(_q_piece(c) for c in text) + _SUFFIX
    b = _B_PREFIX + base64.b64encode(text.encode("utf-8")).decode("ascii") + _SUFFIX
    return q if len(q) <= len(b) else b


def _encoded_words(text: str, *, first: int) -> list[str]:
    """Q encoded words of whole characters (RFC 2047 §5), the first at most `first`
    characters long, the others at most 75; adjacent encoded words decode with nothing
    between them (§6.2), so any split point reads back as the same text."""
    words: list[str] = []
    pieces: list[str] = []
    room = max(first, 24) - _OVERHEAD
    size = 0
    for char in text:
        piece = _q_piece(char)
        if pieces and size + len(piece) > room:
            words.append(_Q_PREFIX + "".join(pieces) + _SUFFIX)
            pieces, size, room = [], 0, MAX_ENCODED_WORD - _OVERHEAD
        pieces.append(piece)
        size += len(piece)
    words.append(_Q_PREFIX + "".join(pieces) + _SUFFIX)
    return words


def _fold(name: str, words: list[str]) -> bytes:
    """`Name: w1 w2 ...`, a line break before a word that would pass the line length
    (RFC 5322 §2.2.3: folding inserts CRLF before existing whitespace, so unfolding gives
    back exactly one space between words). No word is ever split."""
    lines = [f"{name}:"]
    for word in words:
        if len(lines) == 1 and lines[0] == f"{name}:":
            lines[0] += " " + word
        elif word and len(lines[-1]) + 1 + len(word) > LINE:
            lines.append(" " + word)
        else:
            lines[-1] += " " + word
    if any(len(line) > MAX_LINE for line in lines):
        raise HeaderError(f"{name}: a word longer than a header line may be")
    return "\r\n".join(lines).encode("ascii") + CRLF
