"""One Redis client (and connection pool) per process for the app's Redis: the web's and the
workers' (send journals, the rate limit, import jobs)."""

from __future__ import annotations

import functools

import redis
from flask import current_app


@functools.cache
def client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def app_redis() -> redis.Redis:
    """This process's client for the app's Redis (`app.extensions["pressroom.redis_url"]`)."""
    return client_for(current_app.extensions["pressroom.redis_url"])
