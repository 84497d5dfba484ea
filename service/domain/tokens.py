"""Signed links: one salt per purpose, key rotation through fallbacks, optional expiry."""

from __future__ import annotations

import enum
import functools
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import want_bytes

from service.domain.errors import ExpiredToken, InvalidToken

MAX_TOKEN_LENGTH = 512


class Purpose(enum.StrEnum):
    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"
    UNDO = "undo"  # take back an unsubscribe


CONFIRM_TTL = timedelta(days=7)
UNDO_TTL = timedelta(hours=24)


class TokenSigner:
    """Signs with the newest key; verifies with it and with every fallback."""

    def __init__(
        self,
        secret_key: str,
        fallbacks: Sequence[str] = (),
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        class _ClockedSigner(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock())

            def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
                # itsdangerous derives the key (a hash of key and salt) at every signature;
                # a release signs two links per reader, so each pair is derived once.
                key = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)
                return _derived_key(key, self.salt, self.key_derivation, self.digest_method)

        # itsdangerous signs with the last key and accepts all of them.
        self._keys = [*reversed(list(fallbacks)), secret_key]
        self._serializers = {
            purpose: URLSafeTimedSerializer(
                self._keys, salt=f"pressroom.{purpose.value}", signer=_ClockedSigner
            )
            for purpose in Purpose
        }

    def dumps(self, purpose: Purpose, payload: dict[str, Any]) -> str:
        token = self._serializers[purpose].dumps(payload)
        return token if isinstance(token, str) else token.decode()

    def loads(
        self, purpose: Purpose, token: object, *, max_age: timedelta | None = None
    ) -> dict[str, Any]:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken()
        serializer = self._serializers[purpose]
        try:
            if max_age is None:
                payload = serializer.loads(token)
            else:
                payload = serializer.loads(token, max_age=int(max_age.total_seconds()))
        except SignatureExpired:
            raise ExpiredToken() from None
        except (BadSignature, ValueError, TypeError, UnicodeError):
            raise InvalidToken() from None
        if not isinstance(payload, dict):
            raise InvalidToken()
        return payload


@functools.lru_cache(maxsize=64)
def _derived_key(secret_key: bytes, salt: bytes, key_derivation: str, digest_method: Any) -> bytes:
    """itsdangerous's own derivation (Signer.derive_key), once per key, salt and method."""
    signer = TimestampSigner(
        secret_key, salt=salt, key_derivation=key_derivation, digest_method=digest_method
    )
    return TimestampSigner.derive_key(signer)
