"""`make run`'s sink plays a mail system that bounces and a provider whose user complains
(service/dev_reports.py): its reports reach the bounce server's address and read as such."""

from __future__ import annotations

import smtplib

from service.dev_reports import ReportSender
from service.domain import report_mail
from service.mailsink import MailSink, SinkHandler

VERP = "bounces+d1-abcdefghijklmnop@localhost"
MESSAGE = (
    b"From: Pressroom <noreply@localhost>\r\nTo: x\r\nSubject: Vostok\r\n"
    b"Message-ID: <release-1.0123456789abcdef01234567@localhost>\r\n\r\nTekst\r\n"
)


def test_the_local_sink_bounces_one_domain_and_complains_for_another() -> None:
    bounce_server = MailSink().start()
    sink = MailSink(SinkHandler(on_message=ReportSender("127.0.0.1", bounce_server.port))).start()
    try:
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as client:
            for to in ("dead@bounce.example", "angry@complaint.example", "fine@mail.example"):
                client.sendmail(VERP, [to], MESSAGE)
        reports = bounce_server.handler.wait_for(2)
    finally:
        sink.stop()
        bounce_server.stop()
    # To the message's envelope sender, from the null reverse-path (RFC 3464 §2).
    assert all(r.recipients == (VERP,) and r.mail_from == "<>" for r in reports)
    read = {
        line.address: line
        for r in reports
        for line in report_mail.read(r.raw, envelope_recipients=r.recipients).recipients
    }
    assert (read["dead@bounce.example"].action, read["dead@bounce.example"].status) == (
        "failed",
        "5.1.1",
    )
    assert read["angry@complaint.example"].action == "complaint"
    parsed = report_mail.read(reports[0].raw)
    assert parsed.original_message_id == "<release-1.0123456789abcdef01234567@localhost>"
