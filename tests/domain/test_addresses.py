"""Addresses: one normalized form per mailbox, or a clear refusal."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from service.domain.addresses import (
    INVISIBLE,
    INVISIBLE_CATEGORIES,
    display_address,
    normalize_address,
    search_forms,
    trim_address,
)
from service.domain.errors import InvalidAddress


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("  Reader@Mail.Example ", "reader@mail.example"),
        ("ola@blåbær.example", "ola@xn--blbr-roah.example"),
        ("ola@xn--blbr-roah.example", "ola@xn--blbr-roah.example"),
        ("first.last+news@sub.mail.example", "first.last+news@sub.mail.example"),
        # RFC 6531: letters beyond ASCII before the @ (NFC, lower-case), the domain as IDNA.
        ("Bjørn.Ås@example.no", "bjørn.ås@example.no"),
        ("bjo\u0308rn@blåbær.example", "bj\u00f6rn@xn--blbr-roah.example"),
    ],
)
def test_addresses_are_normalized_to_one_ascii_form(typed: str, stored: str) -> None:
    assert normalize_address(typed) == stored


@pytest.mark.parametrize(
    "typed",
    ["æ ø@mail.example", "a@mail.test", "a@localhost", "a" * 65 + "@mail.example", "a@b"],
)
def test_addresses_that_cannot_be_mailed_are_refused(typed: str) -> None:
    with pytest.raises(InvalidAddress):
        normalize_address(typed)


def test_every_invisible_character_is_named_in_the_class() -> None:
    """INVISIBLE is written out for the OpenAPI pattern: it must hold every character of the
    categories trim_address takes off, in this Python's Unicode database."""
    missing = [
        f"U+{code:04X}"
        for code in range(sys.maxunicode + 1)
        if (
            unicodedata.category(chr(code)) in INVISIBLE_CATEGORIES
            or (unicodedata.category(chr(code)) == "Cc" and chr(code).isspace())
        )
        and not INVISIBLE.fullmatch(chr(code))
    ]
    assert missing == []


@pytest.mark.parametrize(
    "mark", ["\u200b", "\ufeff", "\u00a0", "\u2060", "\u200e", "\u2028", "\u2029", "\t", "\r\n"]
)
def test_invisible_characters_at_the_ends_are_taken_off(mark: str) -> None:
    assert trim_address(f"{mark} {mark}a@x.no{mark}") == "a@x.no"
    assert normalize_address(f"{mark}Reader@Mail.Example{mark}{mark}") == "reader@mail.example"


@pytest.mark.parametrize(
    "typed", ["read\u200ber@mail.example", "reader@mail\ufeff.example", "\x00a@x.no", "a@x.no\x1b"]
)
def test_invisible_characters_inside_are_refused(typed: str) -> None:
    with pytest.raises(InvalidAddress):
        normalize_address(typed)


def test_a_stored_address_is_shown_with_its_unicode_domain() -> None:
    assert display_address("ola@xn--blbr-roah.example") == "ola@blåbær.example"
    assert display_address("ola@mail.example") == "ola@mail.example"
    assert display_address("ola@xn--a.example") == "ola@xn--a.example"  # shown as it is


def test_a_search_looks_for_unicode_labels_in_their_stored_form() -> None:
    assert search_forms("Ola@Blåbær.example ") == (
        "ola@blåbær.example",
        "ola@xn--blbr-roah.example",
    )
    assert search_forms("blåbær") == ("blåbær", "xn--blbr-roah")
    assert search_forms("ola@mail") == ("ola@mail",)


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("kari.example.com", "An email address needs an @, as in name@example.com."),
        ("@mail.example", "The email address lacks the part before the @."),
        ("kari@", "The email address lacks the part after the @."),
        ("kari@mail", "The email address must have a domain name such as example.com after the @."),
        ("kari..n@mail.example", "The email address has a period or hyphen in the wrong place"),
        ("kari@mail.test", "The email address ends in a name kept for special uses"),
        ("kari@[127.0.0.1]", "not an IP address"),
        ("kari@mail_x.example", "The email address has characters after the @"),
        ("k" * 65 + "@mail.example", "The email address has more than 64 characters before the @."),
        ("kari@" + "a" * 64 + ".example", "The email address is too long after the @."),
        ("read er@mail.example", "The email address holds a space or an invisible character"),
        ("a@x.no, b@y.no", "Enter one plain email address"),
    ],
)
def test_a_refusal_is_said_in_our_own_translatable_words(typed: str, says: str) -> None:
    with pytest.raises(InvalidAddress) as refused:
        normalize_address(typed)
    assert refused.value.message.startswith(says) or says in refused.value.text
    assert refused.value.message in catalog_ids()
    assert "@-sign" not in refused.value.text


def catalog_ids() -> set[str]:
    from babel.messages.pofile import read_po

    with open("service/translations/messages.pot", "rb") as stream:
        return {message.id for message in read_po(stream) if message.id}
