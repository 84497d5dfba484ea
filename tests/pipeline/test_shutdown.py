"""A warm shutdown (SIGTERM) sends nothing twice, leaves no row in a lease, and is quick,
whichever processes of the worker receive the signal (issue 9, items 4 and 5)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from sqlalchemy import func, select

from service.app_state import get_database
from service.models import Delivery, DeliveryStatus
from tests.pipeline.deployment import Deployment
from tests.pipeline.helpers import (
    RELAY_LATENCY,
    SHUTDOWN_BUDGET,
    add_subscribers,
    api_token,
    assert_each_once,
    finished,
    publish,
    readers,
    wait_until,
)


def leased_rows(d: Deployment) -> int:
    with d.app.app_context(), get_database().session_scope() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.status == DeliveryStatus.SENDING)
            )
            or 0
        )


def stop(process: subprocess.Popen[bytes], *, group: bool) -> float:
    """SIGTERM to the worker's main process or its whole process group; seconds to exit."""
    started = time.monotonic()
    if group:
        os.killpg(process.pid, signal.SIGTERM)  # systemd's KillMode=control-group, docker stop
    else:
        os.kill(process.pid, signal.SIGTERM)
    process.wait(timeout=120)
    return time.monotonic() - started


# Both ways on Redis; on RabbitMQ (README, "RabbitMQ as the broker") the whole group only, for
# the suite's time: the broker takes no part in how the signal reaches the pool.
@pytest.mark.parametrize(
    ("group", "broker"),
    [(True, "redis"), (False, "redis"), (True, "rabbitmq")],
    ids=["process-group", "main-process", "process-group-rabbitmq"],
)
def test_sigterm_mid_send_gives_rows_back_at_once_and_sends_nothing_twice(
    deployment: Deployment, group: bool
) -> None:
    d = deployment
    token = api_token(d.app)
    everyone = readers(400)
    add_subscribers(d.app, everyone)
    d.handler.latency = RELAY_LATENCY  # a relay far away: a batch of 500 takes minutes
    first = d.worker("first", concurrency=2)
    d.beat()
    release = publish(d.app.test_client(), token)
    wait_until(lambda: len(d.handler.received) >= 6, what="first mails", timeout=60)
    took = stop(first, group=group)
    assert first.returncode == 0, d.logs()
    assert took < SHUTDOWN_BUDGET, f"the worker took {took:.1f} s to stop\n{d.logs()}"
    assert leased_rows(d) == 0, f"rows wait for their lease instead of being given back\n{d.logs()}"
    logs = d.logs()
    assert "WorkerLostError" not in logs and "exited with 'signal" not in logs, logs
    d.handler.latency = 0.0
    d.worker("second", concurrency=2)
    wait_until(lambda: finished(d, token, release["id"]), timeout=120, what=d.logs)
    assert_each_once(d, everyone)
