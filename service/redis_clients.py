"""One Redis client (and connection pool) per process for the app's Redis: the web's and the
workers' (send journals, the rate limit, import jobs)."""

from __future__ import annotations

import functools

import redis

from service.app_state import redis_url
from service.redis_sentinel import connect


@functools.cache
def client_for(url: str) -> redis.Redis:
    return connect(url)


def app_redis() -> redis.Redis:
    """This process's client for the app's Redis (app_state.redis_url())."""
    return client_for(redis_url())
