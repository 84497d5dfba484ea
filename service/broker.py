"""Celery's broker: which one (CELERY_BROKER_URL, or REDIS_URL's server) and how every Celery
app of the project talks to it, in one place, so that the web's task client, the workers, beat
and the launcher's ping declare the same queue the same way.

On RabbitMQ (amqp://, amqps://) the task queue is a quorum queue (replicated, durable; RabbitMQ's
advice for data safety, https://www.rabbitmq.com/docs/quorum-queues), every publish waits for
the broker's confirm, and a retry's countdown is held by the broker (Celery's native delayed
delivery, which needs a topic exchange) instead of in a worker's memory. Redis keeps the
journal, the limits, the rate bucket and the locks whichever broker Celery uses.

Imports no Celery: the settings check at start reads this module.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from service import redis_sentinel

AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")
REDIS_SCHEMES = ("redis", "rediss", redis_sentinel.SCHEME)
VISIBILITY_TIMEOUT_SECONDS = 3600  # Redis: a task unacknowledged this long is delivered again


class BrokerUrlError(ValueError):
    """CELERY_BROKER_URL cannot be used; the message says why in one line, without the
    password."""


def check_broker_url(url: str) -> None:
    """Raises BrokerUrlError unless `url` names a broker this project runs on: RabbitMQ
    (amqp://user:password@host:5672/vhost, amqps:// for TLS) or Redis (redis://, rediss://,
    redis+sentinel://, service/redis_sentinel.py)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise BrokerUrlError("is not a URL") from None
    scheme = parts.scheme.lower()
    if scheme not in AMQP_SCHEMES + REDIS_SCHEMES:
        raise BrokerUrlError(
            f"must start with amqp://, amqps://, redis:// or rediss://, not {scheme or 'no'}://"
            if scheme
            else "must be a URL such as amqp://user:password@rabbitmq:5672/pressroom"
        )
    if scheme == redis_sentinel.SCHEME:
        try:
            redis_sentinel.parse(url)
        except redis_sentinel.SentinelUrlError as error:
            raise BrokerUrlError(str(error).rstrip(".")) from None
        return
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise BrokerUrlError(
            f"has a port that is not a number ({scheme}://host:port/...)"
        ) from None
    if not parts.hostname:
        raise BrokerUrlError(f"names no host ({scheme}://host:port/...)")


def broker_url(celery_broker_url: str, redis_url: str) -> str:
    """The broker Celery uses: CELERY_BROKER_URL, or when unset the Redis at `redis_url`."""
    return celery_broker_url or redis_url


def is_amqp(url: str) -> bool:
    """Whether `url` names a RabbitMQ (AMQP) broker."""
    return urlsplit(url).scheme.lower() in AMQP_SCHEMES


def celery_settings(url: str, queue: str) -> dict[str, Any]:
    """Celery settings (broker_url, task_default_queue, ...) for the broker at `url` (Redis,
    Redis behind Sentinel, or RabbitMQ) and the task queue `queue`, the same for every Celery
    app that sends to or reads the queue (a queue declared with other arguments is refused by
    RabbitMQ: PRECONDITION_FAILED)."""
    if not is_amqp(url):
        # A Sentinel URL becomes kombu's sentinel:// transport and its options.
        redis_broker, sentinel_options = redis_sentinel.celery_broker(url)
        return {
            "broker_url": redis_broker,
            "task_default_queue": queue,
            "broker_transport_options": {
                "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
                **sentinel_options,
            },
        }
    return {
        "broker_url": url,
        "task_default_queue": queue,
        # Quorum queues: replicated across the cluster's nodes, messages on disk; Celery then
        # sets per-consumer QoS (worker_detect_quorum_queues), as quorum queues have no global.
        "task_default_queue_type": "quorum",
        "worker_detect_quorum_queues": True,
        # A retry's countdown goes through RabbitMQ's delay queues (native delayed delivery),
        # which route by topic: with a direct exchange the worker would hold the task itself.
        "task_default_exchange_type": "topic",
        "broker_native_delayed_delivery_queue_type": "quorum",
        # Each publish waits for the broker's ack: a task RabbitMQ did not take raises at the
        # sender (then the sweep carries the work out) instead of vanishing.
        "broker_transport_options": {"confirm_publish": True},
    }
