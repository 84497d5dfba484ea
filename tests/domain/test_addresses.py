"""Addresses: one normalized form per mailbox, or a clear refusal."""

from __future__ import annotations

import pytest

from service.domain.addresses import normalize_address
from service.domain.errors import InvalidAddress


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("  Reader@Mail.Example ", "reader@mail.example"),
        ("ola@blåbær.example", "ola@xn--blbr-roah.example"),
        ("ola@xn--blbr-roah.example", "ola@xn--blbr-roah.example"),
        ("first.last+news@sub.mail.example", "first.last+news@sub.mail.example"),
    ],
)
def test_addresses_are_normalized_to_one_ascii_form(typed: str, stored: str) -> None:
    assert normalize_address(typed) == stored


@pytest.mark.parametrize(
    "typed",
    ["æøå@mail.example", "a@mail.test", "a@localhost", "a" * 65 + "@mail.example", "a@b"],
)
def test_addresses_that_cannot_be_mailed_are_refused(typed: str) -> None:
    with pytest.raises(InvalidAddress):
        normalize_address(typed)
