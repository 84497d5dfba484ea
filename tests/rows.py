"""Rows as an import leaves them, for tests that need many readers at once (one bulk INSERT)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from service.models import ConsentSource, SubscriberStatus


def subscriber_rows(
    emails: Iterable[str], *, status: SubscriberStatus, language: str, now: datetime
) -> list[dict[str, Any]]:
    """Values for `insert(Subscriber)`: one reader per address, consent by import at `now`,
    confirmed at `now` when `status` is CONFIRMED."""
    return [
        {
            "uid": uuid.uuid4().hex,
            "email": email,
            "status": status,
            "language": language,
            "token_version": 1,
            "bounce_score": 0,
            "consent_at": now,
            "consent_source": ConsentSource.IMPORT,
            "consent_text_version": "test",
            "created_at": now,
            "updated_at": now,
            "confirmed_at": now if status is SubscriberStatus.CONFIRMED else None,
        }
        for email in emails
    ]
