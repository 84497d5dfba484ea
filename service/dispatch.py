"""The only door from the web to Celery: tasks are sent by name, never imported."""

from __future__ import annotations

import enum
from typing import Any

from celery import Celery
from flask import Flask, current_app


class TaskName(enum.StrEnum):
    SEND_CONFIRMATION = "pressroom.send_confirmation"
    SEND_ALREADY_SUBSCRIBED = "pressroom.send_already_subscribed"
    SEND_WELCOME = "pressroom.send_welcome"
    START_RELEASE = "pressroom.start_release"
    SEND_BATCH = "pressroom.send_batch"
    SEND_TEST_RELEASE = "pressroom.send_test_release"
    SWEEP = "pressroom.sweep"
    IMPORT_SUBSCRIBERS = "pressroom.import_subscribers"


def init_app(app: Flask, broker_url: str, queue: str) -> None:
    client = Celery("pressroom-dispatch", broker=broker_url, set_as_current=False)
    client.conf.update(
        task_default_queue=queue,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"max_retries": 3, "interval_start": 0.1},
        task_serializer="json",
    )
    app.extensions["pressroom.dispatch"] = client


def enqueue(task: TaskName, *args: Any) -> None:
    """Call only after the transaction that made the work has committed."""
    client: Celery = current_app.extensions["pressroom.dispatch"]
    client.send_task(task.value, args=list(args))
