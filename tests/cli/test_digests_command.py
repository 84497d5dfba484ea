"""`flask digests send [--frequency daily|weekly]`: the digests owed by the schedule, or one of a
frequency now, planned by the command and sent by a real worker to the SMTP sink."""

from __future__ import annotations

from click.testing import Result
from flask import Flask

from service.db import utcnow
from service.mailsink import MailSink
from tests.pipeline.helpers import held_for_a_daily_reader
from tests.web.helpers import recipients, settled


def digests(app: Flask, *options: str) -> Result:
    return app.test_cli_runner().invoke(args=["digests", "send", *options])


def test_the_schedule_owes_nothing_yet_and_a_frequency_sends_one_now(
    app: Flask, sink: MailSink, worker: None
) -> None:
    held_for_a_daily_reader(app, published_at=utcnow())  # after the last 08:00
    due = digests(app)
    assert due.exit_code == 0, due.output
    assert "No digest is owed now" in due.stdout  # published after the last 08:00
    now = digests(app, "--frequency", "daily")
    assert now.exit_code == 0, now.output
    assert "1 readers, handed to the workers" in now.stdout
    (mail,) = settled(app, sink, 1)
    assert recipients([mail]) == ["daily@mail.example"]
    assert "Gagarin" in mail.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    again = digests(app, "--frequency", "daily")
    assert "No digest is owed now" in again.stdout  # nothing twice


def test_an_unknown_frequency_is_refused(app: Flask) -> None:
    result = digests(app, "--frequency", "hourly")
    assert result.exit_code == 2 and "hourly" in result.output
