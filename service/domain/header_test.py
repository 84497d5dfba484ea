"""The deliverability page's "send me a test": a message to the signed-in publisher whose
text lists its own headers as they left (and its envelope sender and DKIM signer), to hold
against what the mailbox shows under "show original" (Gmail) or "view source"."""

from __future__ import annotations

import html
from datetime import datetime

from service.domain import mail_headers
from service.domain.emails import OutgoingMail, RenderedEmail, compose
from service.domain.mail_site import MailSite
from service.domain.release_messages import feedback_id

SUBJECT = "Pressroom: the headers of this message as it was sent"


def header_test_email(
    site: MailSite, recipient: str, envelope_sender: str, *, now: datetime, message_id: str
) -> OutgoingMail:
    """HeaderError for a recipient that is not a plain addr-spec."""
    extra = [
        mail_headers.list_id("List-Id", site.site_name, site.list_id),
        mail_headers.structured("Feedback-ID", feedback_id(None, "test", site)),
        mail_headers.structured("Auto-Submitted", "auto-generated"),
    ]

    def build(text: str) -> OutgoingMail:
        body = RenderedEmail(SUBJECT, text, f"<pre>{html.escape(text)}</pre>")
        return compose(
            body, sender=site.mail_from, recipient=recipient, date=now,
            message_id=message_id, headers=extra,
        )  # fmt: skip

    # The head does not depend on the body but for the MIME boundary: build once to read it.
    head = build("").data.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")
    lines = [line for line in head.split("\r\n") if not line.lower().startswith("content-")]
    signer = (
        f"DKIM: signed as d={site.dkim.domain.decode()} s={site.dkim.selector.decode()}"
        if site.dkim
        else "DKIM: not signed (no DKIM_PRIVATE_KEY_FILE)"
    )
    text = "\n".join(
        [
            "These are the headers of this message as Pressroom sent it:",
            "",
            *lines,
            "",
            f"Envelope sender (the receiver's Return-Path): {envelope_sender}",
            signer,
            "",
            "Compare them with what your mailbox shows (Gmail: Show original): SPF, DKIM and",
            "DMARC should each say PASS there.",
        ]
    )
    mail = build(text)
    return OutgoingMail(mail.sender, mail.recipient, site.signed(mail.data))
