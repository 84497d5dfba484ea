"""`flask subscribers invite` (issue 10, item 9): the desk's invitation round from the command
line, sent by a real Celery worker to an SMTP sink; the same readers and the same limit."""

from __future__ import annotations

import time

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient

from service.mailsink import MailSink
from tests.conftest import PENDING_EN, PENDING_NB
from tests.web.helpers import click, recipients, settled, waiting


@pytest.fixture
def desk(desk: FlaskClient, worker: None) -> FlaskClient:
    """The desk (tests/conftest.py), with a worker sending the invitations."""
    return desk


def invite(app: Flask, *options: str) -> Result:
    result = app.test_cli_runner().invoke(args=["subscribers", "invite", *options])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


def test_dry_run_counts_and_changes_nothing(
    app: Flask, sink: MailSink, worker: None, readers: None
) -> None:
    result = invite(app, "--dry-run")
    assert "3 imported readers waiting for confirmation would be sent" in result.stdout
    assert waiting(app) == 0
    time.sleep(0.5)
    assert sink.handler.received == []
    assert "Invited 3" in invite(app).stdout  # the dry run used up nothing


def test_invite_sends_each_pending_imported_reader_one_email_once(
    app: Flask, sink: MailSink, worker: None, readers: None
) -> None:
    result = invite(app)
    assert "Invited 3 imported readers" in result.stdout
    assert "can be invited again from" in result.stdout
    # Not the suppressed, unsubscribed, bounced, confirmed or form-signup readers.
    assert recipients(settled(app, sink, 3)) == sorted(PENDING_NB + PENDING_EN)

    again = invite(app)
    assert "Nobody was invited" in again.stdout
    assert "would be sent" in invite(app, "--dry-run").stdout
    assert invite(app, "--dry-run").stdout.startswith("0 ")
    time.sleep(1.0)
    assert len(sink.handler.received) == 3


def test_the_desk_and_the_cli_share_the_limit(
    app: Flask, desk: FlaskClient, sink: MailSink, readers: None
) -> None:
    click(desk)
    assert len(settled(app, sink, 3)) == 3
    assert "Nobody was invited" in invite(app).stdout
    time.sleep(0.5)
    assert len(sink.handler.received) == 3
