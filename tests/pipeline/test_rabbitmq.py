"""What RabbitMQ as Celery's broker (CELERY_BROKER_URL=amqp://...) changes, on the machine's
server: the task queue is a quorum queue, /metrics reads its depth, and a task retried later
waits in RabbitMQ's delay queues (quorum queues hold no ETA) and then runs."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service import dispatch
from service.dispatch import Dispatcher
from service.task_names import TaskName
from tests.pipeline.deployment import Deployment
from tests.pipeline.helpers import wait_until
from tests.rabbitmq import queue_types

ON_RABBITMQ = pytest.mark.parametrize("broker", ["rabbitmq"])


@ON_RABBITMQ
def test_the_web_declares_a_quorum_queue_and_the_metrics_read_its_depth(
    deployment: Deployment,
) -> None:
    d = deployment
    dispatcher: Dispatcher = d.app.extensions["pressroom.dispatch"]
    assert dispatcher.queue_depth() == 0  # no worker yet, nothing sent: not declared
    with d.app.app_context():
        for _ in range(3):
            dispatch.enqueue(TaskName.SWEEP)
    assert queue_types(d.settings.celery_broker_url)[d.settings.task_queue] == "quorum"
    assert dispatcher.queue_depth() == 3
    scraped = d.app.test_client().get("/metrics").get_data(as_text=True)
    depth = {
        sample.name: sample.value
        for family in text_string_to_metric_families(scraped)
        for sample in family.samples
    }
    assert depth["pressroom_task_queue_messages"] == 3


@ON_RABBITMQ
def test_a_notice_retried_later_waits_in_rabbitmq_and_is_sent_once(
    deployment: Deployment,
) -> None:
    d = deployment
    reader = "kari.nordmann@mail.example"
    d.handler.outage.set()  # the relay says "try later": the confirmation is retried
    d.worker("w", concurrency=2)  # and no beat: only the retry can send it
    answer = d.app.test_client().post("/api/v1/subscriptions", json={"email": reader})
    assert answer.status_code == 202
    log = d.workdir / "w.log"
    wait_until(lambda: "retry: Retry in" in log.read_text(), what=d.logs, timeout=60)
    d.handler.outage.clear()
    wait_until(lambda: d.handler.counts()[reader] == 1, what=d.logs, timeout=120)
    text = log.read_text()
    assert "native delayed delivery" not in text, text  # Celery's warning: the worker held it
    assert "countdown must be a positive number" not in text, text
    assert d.handler.counts()[reader] == 1
