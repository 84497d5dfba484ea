"""The workers' task names: what the web rings (service.dispatch), what service.sending owes,
and what workers/tasks.py registers. Plain strings, so that naming a task loads no Celery."""

from __future__ import annotations

import enum


class TaskName(enum.StrEnum):
    SEND_CONFIRMATION = "pressroom.send_confirmation"
    SEND_ALREADY_SUBSCRIBED = "pressroom.send_already_subscribed"
    SEND_WELCOME = "pressroom.send_welcome"
    START_RELEASE = "pressroom.start_release"
    SEND_BATCH = "pressroom.send_batch"
    SEND_TEST_RELEASE = "pressroom.send_test_release"
    SWEEP = "pressroom.sweep"
    IMPORT_SUBSCRIBERS = "pressroom.import_subscribers"
    SEND_INVITATIONS = "pressroom.send_invitations"
    TAKE_REPORT = "pressroom.take_report"
    SEND_HEADER_TEST = "pressroom.send_header_test"
    DELIVER_WEBHOOK = "pressroom.deliver_webhook"
