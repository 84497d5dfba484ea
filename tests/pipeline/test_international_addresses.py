"""Addresses with letters beyond ASCII before the @ (issue 10, item 8; RFC 6531, 6532).

They are accepted at every door, and mail to them goes out with SMTPUTF8 where the relay
offers it. Where it does not, that delivery alone fails, with a reason the desk shows in its
own words: the reader is not blamed (no bounce, no suppression), the send is not paused, and
everyone else gets the release.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from service.app_state import get_database
from service.mailsink import MailSink, SinkHandler
from service.models import Subscriber, SubscriberStatus, Suppression
from service.sending import transport as smtp
from service.sending.transport import SmtpMailer, SmtpSettings
from tests.conftest import log_in
from tests.pipeline.deployment import Deployment
from tests.pipeline.helpers import (
    add_subscribers,
    api_token,
    delivery,
    finished,
    publish,
    wait_until,
)

BJORN = "bjørn.ås@example.no"


def test_the_form_and_the_api_take_an_address_beyond_ascii_and_confirm_it(
    app: Flask, client: FlaskClient, sink: MailSink, worker: None
) -> None:
    answer = client.post("/api/v1/subscriptions", json={"email": "Bjørn.Ås@example.no"})
    assert answer.status_code == 202, answer.text
    mail = sink.handler.wait_for(1)[0]
    assert mail.recipients == (BJORN,)
    assert f"To: {BJORN}\r\n".encode() in mail.raw
    with app.app_context(), get_database().session_scope() as session:
        assert session.scalars(select(Subscriber.email)).all() == [BJORN]


def test_an_import_takes_an_address_beyond_ascii(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text(f"email\n{BJORN.upper()}\nkari@mail.example\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["subscribers", "import", str(path)])
    assert result.exit_code == 0, result.output
    with app.app_context(), get_database().session_scope() as session:
        assert sorted(session.scalars(select(Subscriber.email))) == [BJORN, "kari@mail.example"]


def test_the_mailer_uses_smtputf8_only_where_the_relay_offers_it() -> None:
    offering = MailSink(SinkHandler()).start()
    lacking = MailSink(SinkHandler(), enable_SMTPUTF8=False).start()
    data = f"To: {BJORN}\r\nSubject: x\r\n\r\nx\r\n".encode()
    try:
        with SmtpMailer(SmtpSettings.from_url(offering.url)) as mailer:
            mailer.send_raw("noreply@press.example", [BJORN], data)
        assert offering.handler.wait_for(1)[0].recipients == (BJORN,)
        with SmtpMailer(SmtpSettings.from_url(lacking.url)) as mailer:
            try:
                mailer.send_raw("noreply@press.example", [BJORN], data)
            except smtp.PermanentSendError as error:
                assert isinstance(error, smtp.NoSmtpUtf8Error)
                assert not error.systemic and "SMTPUTF8" in str(error)
            else:
                raise AssertionError("sent without SMTPUTF8")
            # The connection is still good for the next reader.
            mailer.send_raw(
                "noreply@press.example", ["kari@mail.example"], b"Subject: y\r\n\r\ny\r\n"
            )
        assert [m.recipients for m in lacking.handler.wait_for(1)] == [("kari@mail.example",)]
    finally:
        offering.stop()
        lacking.stop()


def test_a_relay_without_smtputf8_fails_that_delivery_alone_and_blames_nobody(
    deployment: Deployment,
) -> None:
    d = deployment
    d.handler.smtputf8 = False
    token = api_token(d.app)
    others = [f"reader{i:02d}@{('mail', 'post')[i % 2]}.example" for i in range(12)]
    add_subscribers(d.app, [*others[:6], BJORN, *others[6:]])
    d.worker("w", concurrency=2)
    d.beat()
    release = publish(d.app.test_client(), token)
    wait_until(lambda: finished(d, token, release["id"]), timeout=60, what=d.logs)
    state = delivery(d, token, release["id"])
    assert (state["sent"], state["failed"], state["pause_reason"]) == (len(others), 1, None)
    assert sorted(d.handler.counts()) == sorted(others)
    assert d.handler.attempts[BJORN] == 0  # never offered: it would be refused anyway
    with d.app.app_context(), get_database().session_scope() as session:
        bjorn = session.scalars(select(Subscriber).where(Subscriber.email == BJORN)).one()
        assert (bjorn.status, bjorn.bounce_score) == (SubscriberStatus.CONFIRMED, 0)
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
    desk = d.app.test_client()
    assert log_in(desk)[0] == 303
    page = desk.get(f"/admin/releases/{release['id']}/send?lang=en").get_data(as_text=True)
    assert BJORN in page
    assert "the mail server does not take such addresses (it does not offer SMTPUTF8)" in page
    page = desk.get(f"/admin/releases/{release['id']}/send?lang=nb").get_data(as_text=True)
    assert "SMTPUTF8" in page and "Ikke sendt" in page
