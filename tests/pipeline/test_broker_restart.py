"""CONTRACT §8 when Celery's broker goes down mid-send and comes back on the same address: a
Redis that kept nothing (the sweep sends again what its queue held), or a RabbitMQ node killed
and restarted (its quorum queue kept the tasks on disk). Nobody is lost, nobody gets two.

The broker here is a private one the test may kill: Redis's journal, limits and locks stay on
the session's server, and the machine's RabbitMQ, shared with others, is never stopped."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from service.embedded_redis import EmbeddedRedis, free_port
from tests.pipeline.deployment import BOTH_BROKERS, Deployment, skip_on_the_second_database
from tests.pipeline.helpers import (
    add_subscribers,
    api_token,
    assert_each_once,
    finished,
    publish,
    readers,
    wait_until,
)
from tests.rabbitmq import PrivateRabbitMQ

DOWN_SECONDS = 2.0  # long enough for the worker and beat to find the broker gone


class Restartable(Protocol):
    url: str

    def start(self) -> object: ...

    def kill(self) -> None: ...


class RestartableRedis:
    """An embedded Redis as Celery's broker, started again on the same port (empty: it saves
    nothing, as a Redis without persistence after a restart)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._server: EmbeddedRedis | None = None

    def start(self) -> RestartableRedis:
        self._server = EmbeddedRedis(self.port).start()
        return self

    def kill(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._server = None


@pytest.fixture
def restartable_broker(
    broker: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Restartable]:
    if broker == "rabbitmq":
        skip_on_the_second_database(request)
    server: Restartable = (
        PrivateRabbitMQ(tmp_path / "rabbitmq") if broker == "rabbitmq" else RestartableRedis()
    )
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def celery_broker_url(restartable_broker: Restartable) -> str:
    """The deployment's CELERY_BROKER_URL: the broker this test restarts."""
    return restartable_broker.url


@BOTH_BROKERS
@pytest.mark.deployment_settings(send_rate=150.0)  # a send of some seconds to restart during
def test_a_broker_restart_mid_send_loses_nobody_and_sends_nothing_twice(
    deployment: Deployment, restartable_broker: Restartable
) -> None:
    d = deployment
    token = api_token(d.app)
    everyone = readers(2000)
    add_subscribers(d.app, everyone)
    d.worker("w", concurrency=2)
    d.beat()
    release = publish(d.app.test_client(), token)
    wait_until(lambda: len(d.handler.received) >= 200, what="200 mails", timeout=60)
    restartable_broker.kill()
    time.sleep(DOWN_SECONDS)
    restartable_broker.start()
    assert len(d.handler.received) < len(everyone), "the send finished before the restart"
    wait_until(lambda: finished(d, token, release["id"]), timeout=180, what=d.logs)
    assert_each_once(d, everyone)
