"""Signed links: purpose, subscriber, expiry and key rotation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.domain.errors import ExpiredToken, InvalidToken
from service.domain.tokens import CONFIRM_TTL, Purpose, TokenSigner


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_token_only_works_for_its_own_purpose() -> None:
    signer = TokenSigner("key-one-is-long-enough")
    token = signer.dumps(Purpose.UNSUBSCRIBE, {"u": "abc"})
    assert signer.loads(Purpose.UNSUBSCRIBE, token) == {"u": "abc"}
    for other in (Purpose.CONFIRM, Purpose.PREFERENCES):
        with pytest.raises(InvalidToken):
            signer.loads(other, token)


def test_a_token_signed_with_another_key_is_refused() -> None:
    token = TokenSigner("attacker-key-123456").dumps(Purpose.CONFIRM, {"u": "abc", "v": 1})
    with pytest.raises(InvalidToken):
        TokenSigner("the-real-key-123456").loads(Purpose.CONFIRM, token)


def test_tampered_payload_is_refused() -> None:
    signer = TokenSigner("key-one-is-long-enough")
    token = signer.dumps(Purpose.UNSUBSCRIBE, {"u": "abc"})
    payload, rest = token.split(".", 1)
    forged = TokenSigner("x" * 20).dumps(Purpose.UNSUBSCRIBE, {"u": "xyz"}).split(".", 1)[0]
    with pytest.raises(InvalidToken):
        signer.loads(Purpose.UNSUBSCRIBE, f"{forged}.{rest}")
    assert payload != forged


def test_rotation_keeps_old_links_working_and_signs_with_the_new_key() -> None:
    old = TokenSigner("old-key-0123456789")
    old_token = old.dumps(Purpose.UNSUBSCRIBE, {"u": "abc"})
    rotated = TokenSigner("new-key-0123456789", fallbacks=["old-key-0123456789"])
    assert rotated.loads(Purpose.UNSUBSCRIBE, old_token) == {"u": "abc"}
    new_token = rotated.dumps(Purpose.UNSUBSCRIBE, {"u": "abc"})
    assert TokenSigner("new-key-0123456789").loads(Purpose.UNSUBSCRIBE, new_token) == {"u": "abc"}
    with pytest.raises(InvalidToken):
        old.loads(Purpose.UNSUBSCRIBE, new_token)


def test_confirm_tokens_expire_after_seven_days() -> None:
    clock = Clock()
    signer = TokenSigner("key-one-is-long-enough", clock=clock)
    token = signer.dumps(Purpose.CONFIRM, {"u": "abc", "v": 1})
    clock.now += CONFIRM_TTL.total_seconds() - 60
    assert signer.loads(Purpose.CONFIRM, token, max_age=CONFIRM_TTL)["u"] == "abc"
    clock.now += 120
    with pytest.raises(ExpiredToken):
        signer.loads(Purpose.CONFIRM, token, max_age=CONFIRM_TTL)


def test_unsubscribe_tokens_never_expire() -> None:
    clock = Clock()
    signer = TokenSigner("key-one-is-long-enough", clock=clock)
    token = signer.dumps(Purpose.UNSUBSCRIBE, {"u": "abc"})
    clock.now += timedelta(days=3650).total_seconds()
    assert signer.loads(Purpose.UNSUBSCRIBE, token) == {"u": "abc"}


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 600, "é.ø.å", None, 42])
def test_garbage_is_an_invalid_token(garbage: object) -> None:
    with pytest.raises(InvalidToken):
        TokenSigner("key-one-is-long-enough").loads(Purpose.CONFIRM, garbage)
