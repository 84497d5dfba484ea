"""Turning what a person typed into one normalized address, or a clear refusal."""

from __future__ import annotations

import re
import unicodedata

import idna
from email_validator import EmailNotValidError, validate_email

from service.domain import address_reasons
from service.domain.errors import N_, InvalidAddress

MAX_ADDRESS_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64  # RFC 5321 4.5.3.1.1; email-validator >= 2.3 checks it only if strict
# What copy-paste brings around an address and `trim_address` takes off its ends: format
# characters (Cf: zero-width space, BOM U+FEFF, bidi marks, soft hyphen), separators (Zs:
# spaces and no-break spaces; Zl, Zp) and the controls that are white space (tab, CR, LF, VT,
# FF, U+001C-U+001F, U+0085). Other controls (NUL, ESC ...) are no paste's doing: refused.
# Written out (Unicode 14, Python 3.11; tests/domain/test_addresses.py checks it against the
# running Python) so that the OpenAPI pattern can say the same; there only the BMP part, as
# an ECMA-262 pattern without the u flag cannot name the others.
INVISIBLE_CATEGORIES = frozenset({"Cf", "Zs", "Zl", "Zp"})
# A character class's contents (regular-expression escapes), for patterns.
INVISIBLE_BMP = (
    r"\x09-\x0d\x1c-\x20\x85\xa0\xad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2"
    r"\u1680\u180e\u2000-\u200f\u2028-\u202f\u205f-\u2064\u2066-\u206f\u3000\ufeff"
    r"\ufff9-\ufffb"
)
_INVISIBLE_ASTRAL = (
    r"\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3"
    r"\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
INVISIBLE = re.compile(f"[{INVISIBLE_BMP}{_INVISIBLE_ASTRAL}]")
_INVISIBLE_ENDS = re.compile(
    rf"\A[{INVISIBLE_BMP}{_INVISIBLE_ASTRAL}]+|[{INVISIBLE_BMP}{_INVISIBLE_ASTRAL}]+\Z"
)
# Control characters, separators of several addresses, and display-name syntax: all refused
# before the validator, so that "a@x.example\r\nBcc: b@y.example" can never reach a header.
_SEPARATORS = re.compile(r"[\x00-\x08\x0e-\x1b\x7f<>,;\"]")
_WHITE_SPACE = re.compile(r"\s")
# Top-level names email-validator refuses (its SPECIAL_USE_DOMAIN_NAMES: RFC 6761, 6762, 7686).
SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c}]" for c in word)


_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~-"  # RFC 5322 3.2.3
# RFC 6532 §3.2 adds UTF8-non-ascii to atext; email-validator refuses invisible and unsafe
# ones (categories C*, Z*), which the BMP ranges below mostly leave out.
_UTF8_ATEXT = (
    r"\u00a1-\u00ac\u00ae-\u05ff\u0606-\u061b\u061d-\u06dc\u06de-\u1fff\u2070-\u2fff"
    r"\u3001-\ud7ff\uf900-\ufefe\uff00-\ufff8"
)
_LABEL = r"(?![A-Za-z0-9]{2}--)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"  # RFC 1035 2.3.1
_TOP_LEVEL = (
    rf"(?!(?:{'|'.join(_any_case(name) for name in SPECIAL_USE_DOMAINS)})[{INVISIBLE_BMP}]*$)"
    r"(?![A-Za-z0-9]{2}--)(?:[A-Za-z]|[A-Za-z0-9][A-Za-z0-9-]{0,61}[A-Za-z])"
)
# What normalize_address accepts, as one ECMA-262/Python regular expression for the OpenAPI
# schema: a dot-atom before the @ (at most 64 characters, RFC 5321 4.5.3.1.1; letters beyond
# ASCII allowed, RFC 6531), and host names with a dot, a top-level name ending in a letter
# that is not special-use. Only ASCII domains: an internationalized one (blåbær.no) is
# accepted too, as IDNA allows it. Invisible characters at either end are allowed, as
# trim_address takes them off.
ADDRESS_PATTERN = (
    rf"^[{INVISIBLE_BMP}]*(?![^@]{{{MAX_LOCAL_PART_LENGTH + 1}}})"
    rf"[{_ATEXT}{_UTF8_ATEXT}]+(?:\.[{_ATEXT}{_UTF8_ATEXT}]+)*"
    rf"@(?:{_LABEL}\.)+{_TOP_LEVEL}[{INVISIBLE_BMP}]*$"
)


def trim_address(text: str) -> str:
    """`text` without the invisible characters copy-paste brings at its ends: white-space
    controls (tab, CR, LF ...), format characters (Cf: U+200B zero-width space, U+FEFF BOM,
    U+200E/F marks, U+00AD soft hyphen) and separators (Zs incl. U+00A0 no-break space,
    Zl U+2028, Zp U+2029).

    Every door that takes an address (form, API, CSV import, desk search and login, CLI)
    trims with this one function; inside an address the same characters stay an error."""
    return _INVISIBLE_ENDS.sub("", text)


def normalize_address(raw: object, *, check_deliverability: bool = False) -> str:
    """The one stored form of an address a person or a program gave: `local@domain`, ends
    trimmed (trim_address), lower-case, the domain in its ASCII (IDNA, RFC 5891) form.

    Raises InvalidAddress (a translatable message) for anything that is not one plain,
    deliverable-looking address: RFC 5322 §3.4.1 dot-atom, RFC 5321 §4.5.3.1 lengths."""
    if not isinstance(raw, str):
        raise InvalidAddress(N_("The email address must be a text string."))
    candidate = trim_address(raw)
    if not candidate:
        raise InvalidAddress(N_("Enter an email address."))
    if len(candidate) > MAX_ADDRESS_LENGTH:
        raise InvalidAddress(
            N_("An email address has at most %(count)s characters."), count=MAX_ADDRESS_LENGTH
        )
    # "=?" opens an RFC 2047 encoded word, which some mail parsers decode even inside an
    # address: no real mailbox needs it, and refused here it never reaches a To line.
    if _SEPARATORS.search(candidate) or "=?" in candidate:
        raise InvalidAddress(address_reasons.ONE_PLAIN_ADDRESS)
    if INVISIBLE.search(candidate) or _WHITE_SPACE.search(candidate):
        raise InvalidAddress(address_reasons.INVISIBLE_INSIDE)
    try:
        result = validate_email(
            candidate,
            check_deliverability=check_deliverability,
            allow_display_name=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            # bjørn.ås@example.no is a valid address (RFC 6531, 6532): mail to it goes out
            # with SMTPUTF8 where the relay offers it (service/sending/transport.py).
            allow_smtputf8=True,
        )
    except EmailNotValidError as error:
        raise address_reasons.refusal(error) from None
    if len(result.local_part) > MAX_LOCAL_PART_LENGTH:
        raise InvalidAddress(address_reasons.LOCAL_PART_TOO_LONG, count=MAX_LOCAL_PART_LENGTH)
    # The domain in its ASCII form (IDNA) makes duplicates equal, ola@blåbær.no and
    # ola@xn--blbr-roah.no are one reader, and needs nothing of the relay; the part before
    # the @ stays as typed (NFC, RFC 6532 §3.1), lower-case like every stored address.
    local = unicodedata.normalize("NFC", result.local_part.lower())
    return f"{local}@{result.ascii_domain.lower()}"


def lookup_address(raw: object) -> str | None:
    """The stored form of an address given to find a row (a desk login, a lookup), or None
    when it cannot be one: normalized exactly as a signup stores it."""
    try:
        return normalize_address(raw)
    except InvalidAddress:
        return None


def display_address(stored: str) -> str:
    """An address as a person reads it: the domain in Unicode (`ola@blåbær.example`, not
    `ola@xn--blbr-roah.example`; IDNA ToUnicode, RFC 5891 §5). Pages, the desk and emails'
    text show this (the `address` template filter); the API, the CSV export and the SMTP
    envelope keep the stored form. An address whose domain does not decode is shown as is."""
    local, at, domain = stored.rpartition("@")
    if not at or "xn--" not in domain.lower():
        return stored
    try:
        return f"{local}@{idna.decode(domain)}"
    except (idna.IDNAError, UnicodeError):
        return stored


def _ascii_label(label: str) -> str:
    """A domain label in its IDNA form (RFC 5891 §4, with UTS #46 mapping), or as it is when
    it is ASCII already or has no IDNA form."""
    if label.isascii():
        return label
    try:
        return idna.encode(label, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return label


def search_forms(fragment: str) -> tuple[str, ...]:
    """What to look for in stored addresses when a person searches for `fragment` (a whole
    address or a part of one): the fragment as typed (trimmed, NFC, lower-case), and, when it
    names whole domain labels in Unicode, the same with those labels in their IDNA form, as
    rows hold them: `ola@blåbær.example` and `blåbær` find `ola@xn--blbr-roah.example`. A part
    of a Unicode label (`blåb`) has no IDNA form of its own and finds only what holds it."""
    text = unicodedata.normalize("NFC", trim_address(fragment)).lower()
    local, at, domain = text.rpartition("@")
    ascii_form = local + at + ".".join(_ascii_label(label) for label in domain.split("."))
    return (text,) if ascii_form == text else (text, ascii_form)
