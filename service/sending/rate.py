"""SEND_RATE: one token bucket in Redis shared by every worker on every machine."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

# Refill by elapsed time (the server's clock, so machines need not agree), take one if there.
_TAKE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], 60000)
return tostring(wait)
"""


STOP_CHECK_SECONDS = 0.25  # a wait for the rate looks this often whether to stop


def _never() -> bool:
    return False


class SendRateLimiter:
    """`acquire()` returns True once this worker may send one more message, or False as soon
    as `stop()` says to stop waiting (a warm shutdown)."""

    def __init__(self, client: redis.Redis, rate: float, key: str = "pressroom:send-rate") -> None:
        self._rate = rate
        self._burst = max(1.0, rate)
        self._key = key
        self._take = client.register_script(_TAKE)

    def acquire(self, stop: Callable[[], bool] = _never) -> bool:
        while True:
            wait = float(self._take(keys=[self._key], args=[self._rate, self._burst]))
            if wait <= 0:
                return True
            deadline = time.monotonic() + min(wait, 1.0)
            while (left := deadline - time.monotonic()) > 0:
                if stop():
                    return False
                time.sleep(min(left, STOP_CHECK_SECONDS))


class Unlimited:
    def acquire(self, stop: Callable[[], bool] = _never) -> bool:
        return True
