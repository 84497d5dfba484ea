"""Turning what a person typed into one normalized address, or a clear refusal."""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email

from service.domain.errors import N_, InvalidAddress

MAX_ADDRESS_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64  # RFC 5321 4.5.3.1.1; email-validator >= 2.3 checks it only if strict
# Control characters, separators of several addresses, and display-name syntax: all refused
# before the validator, so that "a@x.example\r\nBcc: b@y.example" can never reach a header.
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f<>,;\s\"]")
# Top-level names email-validator refuses (its SPECIAL_USE_DOMAIN_NAMES: RFC 6761, 6762, 7686).
SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c}]" for c in word)


_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~-"  # RFC 5322 3.2.3
_LABEL = r"(?![A-Za-z0-9]{2}--)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"  # RFC 1035 2.3.1
_TOP_LEVEL = (
    rf"(?!(?:{'|'.join(_any_case(name) for name in SPECIAL_USE_DOMAINS)})$)"
    r"(?![A-Za-z0-9]{2}--)(?:[A-Za-z]|[A-Za-z0-9][A-Za-z0-9-]{0,61}[A-Za-z])"
)
# What normalize_address accepts, as one ECMA-262/Python regular expression for the OpenAPI
# schema: a dot-atom of ASCII before the @ (at most 64 characters, RFC 5321 4.5.3.1.1), and
# host names with a dot, a top-level name ending in a letter that is not special-use. Only
# ASCII domains: an internationalized one (blåbær.no) is accepted too, as IDNA allows it.
ADDRESS_PATTERN = (
    rf"^(?![^@]{{{MAX_LOCAL_PART_LENGTH + 1}}})[{_ATEXT}]+(?:\.[{_ATEXT}]+)*"
    rf"@(?:{_LABEL}\.)+{_TOP_LEVEL}$"
)


def exact_address(raw: object) -> object:
    """The address as the JSON API takes it: no spaces around it (a form's field may have
    them; a program sends what it means). Raises InvalidAddress; hands anything else on to
    normalize_address, which judges it."""
    if isinstance(raw, str) and raw != raw.strip():
        raise InvalidAddress(N_("Enter one plain email address, like name@example.com."))
    return raw


def normalize_address(raw: object, *, check_deliverability: bool = False) -> str:
    if not isinstance(raw, str):
        raise InvalidAddress(N_("The email address must be a text string."))
    candidate = raw.strip()
    if not candidate:
        raise InvalidAddress(N_("Enter an email address."))
    if len(candidate) > MAX_ADDRESS_LENGTH:
        raise InvalidAddress(
            N_("An email address has at most %(count)s characters."), count=MAX_ADDRESS_LENGTH
        )
    # "=?" opens an RFC 2047 encoded word, which some mail parsers decode even inside an
    # address: no real mailbox needs it, and refused here it never reaches a To line.
    if _FORBIDDEN.search(candidate) or "=?" in candidate:
        raise InvalidAddress(N_("Enter one plain email address, like name@example.com."))
    try:
        result = validate_email(
            candidate,
            check_deliverability=check_deliverability,
            allow_display_name=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            # Non-ASCII before the @ needs SMTPUTF8, which many mail servers still lack.
            allow_smtputf8=False,
        )
    except EmailNotValidError as error:
        raise InvalidAddress(
            N_("That is not a valid email address: %(reason)s"), reason=str(error)
        ) from None
    if len(result.local_part) > MAX_LOCAL_PART_LENGTH:
        raise InvalidAddress(
            N_("That is not a valid email address: %(reason)s"),
            reason=f"The part before the @-sign has more than {MAX_LOCAL_PART_LENGTH} characters.",
        )
    # The ASCII form (IDNA for the domain) is what SMTP needs and what makes duplicates equal:
    # ola@blåbær.no and ola@xn--blbr-roah.no are one reader.
    return (result.ascii_email or result.normalized).lower()
