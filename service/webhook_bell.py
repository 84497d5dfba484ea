"""Rings the outgoing webhook events a transaction wrote, once it has committed.

The domain lists the outbox rows it writes in `session.info[webhook_outbox.TO_RING]`; every
session of the app's database is watched here, so each door (a page, the API, the desk, a
CLI command, a task) rings what it owed without knowing. A ring that fails (the broker down,
no app to ring from) is left to the sweep, which rings every event that is due.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from service import dispatch
from service.app_state import DATABASE
from service.domain.webhook_outbox import TO_RING
from service.task_names import TaskName

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    sessions = app.extensions[DATABASE].sessionmaker
    event.listen(sessions, "after_commit", _ring)
    event.listen(sessions, "after_soft_rollback", _forget)


def _ring(session: Session) -> None:
    owed: list[int] = session.info.pop(TO_RING, [])
    if not owed or not has_app_context() or "pressroom.dispatch" not in current_app.extensions:
        return  # the sweep rings them
    try:
        for row_id in owed:
            if not dispatch.ring(TaskName.DELIVER_WEBHOOK, row_id):
                return  # the broker is down: the sweep rings the rest too
    except Exception:  # committed already: a failed ring must not turn into an error answer
        log.exception("outgoing webhook events left to the sweep")


def _forget(session: Session, previous_transaction: Any) -> None:
    session.info.pop(TO_RING, None)
