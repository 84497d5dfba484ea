"""Report mails in the shapes real mail systems write them, written for these tests (none is
copied from anywhere): Postfix, Exim, Exchange/Outlook, Gmail and qmail bounces, a Yahoo/AOL
complaint (ARF), and auto-replies.

Each builder takes the failed recipient, the address the report is sent to (a VERP address or
the bare bounce address), the original message's envelope sender and its Message-ID.
"""

from __future__ import annotations

from dataclasses import dataclass

CRLF = "\r\n"


@dataclass(frozen=True)
class Original:
    """The message reported on: as it left Pressroom."""

    recipient: str
    envelope_sender: str  # its Return-Path at the receiver
    message_id: str
    subject: str = "60 år siden Jurij Gagarin erobret verdensrommet"

    def headers(self) -> str:
        return (
            f"Return-Path: <{self.envelope_sender}>\n"
            f"Received: from mail.press.example (mail.press.example [192.0.2.25])\n"
            f"\tby mx.mail.example with ESMTPS id 4QXk2;\n\tMon, 30 Nov 2026 10:00:01 +0100\n"
            f"From: Pressroom <noreply@press.example>\n"
            f"To: {self.recipient}\n"
            f"Subject: =?utf-8?q?60_=C3=A5r_siden?=\n"
            f"Date: Mon, 30 Nov 2026 10:00:00 +0100\n"
            f"Message-ID: {self.message_id}\n"
            f"List-Id: Pressroom <releases.press.example>\n"
            f"MIME-Version: 1.0\n"
        )


def _crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", CRLF).encode()


def postfix(original: Original, to: str, *, status: str = "5.1.1") -> bytes:
    reply = {
        "5.1.1": f"550 5.1.1 <{original.recipient}>: Recipient address rejected: "
        "User unknown in virtual mailbox table",
        "5.7.1": "550 5.7.1 Message rejected as spam by Content Filtering",
        "4.2.2": f"452 4.2.2 <{original.recipient}>: Mailbox full",
    }[status]
    action = "delayed" if status.startswith("4") else "failed"
    return _crlf(
        f"""Return-Path: <>
Delivered-To: {to}
Received: by mail.press.example (Postfix) id 7F1A2C0012; Mon, 30 Nov 2026 10:00:03 +0100
Date: Mon, 30 Nov 2026 10:00:03 +0100
From: MAILER-DAEMON@mail.press.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {to}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="7F1A2C0012.1796032803/mail.press.example"
Message-Id: <20261130090003.7F1A2C0012@mail.press.example>

This is a MIME-encapsulated message.

--7F1A2C0012.1796032803/mail.press.example
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mail.press.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

<{original.recipient}>: host mx.mail.example[198.51.100.7] said: {reply}
    (in reply to RCPT TO command)

--7F1A2C0012.1796032803/mail.press.example
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.press.example
X-Postfix-Queue-ID: 7F1A2C0012
X-Postfix-Sender: rfc822; {original.envelope_sender}
Arrival-Date: Mon, 30 Nov 2026 10:00:01 +0100

Final-Recipient: rfc822; {original.recipient}
Original-Recipient: rfc822;{original.recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mx.mail.example
Diagnostic-Code: smtp; {reply}

--7F1A2C0012.1796032803/mail.press.example
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

{original.headers()}
--7F1A2C0012.1796032803/mail.press.example--
"""
    )


def exim(original: Original, to: str) -> bytes:
    """Exim's own text bounce (not a DSN): X-Failed-Recipients and a quoted copy."""
    return _crlf(
        f"""Return-path: <>
Envelope-to: {to}
From: Mail Delivery System <Mailer-Daemon@mx.mail.example>
To: {to}
Subject: Mail delivery failed: returning message to sender
Message-Id: <E1vPq2R-0004Xy-Kd@mx.mail.example>
Date: Mon, 30 Nov 2026 10:00:04 +0100
X-Failed-Recipients: {original.recipient}
Auto-Submitted: auto-replied

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  {original.recipient}
    SMTP error from remote mail server after RCPT TO:<{original.recipient}>:
    550 5.1.1 No such user here

------ This is a copy of the message, including all the headers. ------

{original.headers()}
Content-Type: text/plain; charset=utf-8

Les mer på press.example.
"""
    )


def exchange(original: Original, to: str) -> bytes:
    """Exchange Online's non-delivery report: HTML for people, a DSN for machines."""
    return _crlf(
        f"""From: Microsoft Outlook <postmaster@mail.example>
To: {to}
Date: Mon, 30 Nov 2026 09:00:05 +0000
Subject: Undeliverable: 60 år siden Jurij Gagarin erobret verdensrommet
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="_000_AM0PR01MB123456_"
Message-ID: <AM0PR01MB1234565A2@AM0PR01MB123456.eurprd01.prod.outlook.com>
MIME-Version: 1.0
X-MS-Exchange-Message-Is-Ndr:

--_000_AM0PR01MB123456_
Content-Type: text/html; charset="us-ascii"

<html><body><p><b><font color="#000066">Your message to {original.recipient}
couldn't be delivered.</font></b></p><p>The email address wasn't found at the
destination domain.</p></body></html>

--_000_AM0PR01MB123456_
Content-Type: message/delivery-status

Reporting-MTA: dns;AM0PR01MB123456.eurprd01.prod.outlook.com
Received-From-MTA: dns;mail.press.example
Arrival-Date: Mon, 30 Nov 2026 09:00:02 +0000

Final-Recipient: rfc822;{original.recipient}
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not
 found by SMTP address lookup

--_000_AM0PR01MB123456_
Content-Type: message/rfc822

{original.headers()}
Content-Type: text/plain; charset=utf-8

Les mer på press.example.

--_000_AM0PR01MB123456_--
"""
    )


def gmail(original: Original, to: str, *, over_quota: bool = False) -> bytes:
    code = (
        "552-5.2.2 The email account that you tried to reach is over quota."
        if over_quota
        else "550-5.1.1 The email account that you tried to reach does not exist."
    )
    status = "5.2.2" if over_quota else "5.1.1"
    return _crlf(
        f"""Delivered-To: {to}
Return-Path: <>
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: {to}
Auto-Submitted: auto-replied
Subject: Delivery Status Notification (Failure)
Message-ID: <6567a1b2.050a0220.9c3e1.0003.GMR@mx.google.com>
Date: Mon, 30 Nov 2026 01:00:06 -0800
MIME-Version: 1.0
Content-Type: multipart/report; boundary="000000000000aa1b2c3d"; report-type=delivery-status

--000000000000aa1b2c3d
Content-Type: multipart/related; boundary="000000000000aa1b2c3e"

--000000000000aa1b2c3e
Content-Type: text/plain; charset="UTF-8"

** Address not found **

Your message wasn't delivered to {original.recipient} because the address couldn't be
found, or is unable to receive mail.

The response was:

{code} Please try double-checking the recipient's email address for typos.

--000000000000aa1b2c3e--

--000000000000aa1b2c3d
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Arrival-Date: Mon, 30 Nov 2026 01:00:04 -0800
X-Original-Message-ID: {original.message_id}

Final-Recipient: rfc822; {original.recipient}
Action: failed
Status: {status}
Remote-MTA: dns; gmail-smtp-in.l.google.com. (2a00:1450:4010:c0e::1b, the server for the
 domain gmail.example.)
Diagnostic-Code: smtp; {code} https://support.google.com/mail/?p=NoSuchUser
Last-Attempt-Date: Mon, 30 Nov 2026 01:00:06 -0800

--000000000000aa1b2c3d
Content-Type: message/rfc822

{original.headers()}
Content-Type: text/plain; charset=utf-8

Les mer.

--000000000000aa1b2c3d--
"""
    )


def qmail(original: Original, to: str) -> bytes:
    """qmail-send's QSBMF text (http://cr.yp.to/proto/qsbmf.txt), not MIME at all."""
    return _crlf(
        f"""Return-Path: <>
Date: 30 Nov 2026 09:00:07 -0000
From: MAILER-DAEMON@mx.mail.example
To: {to}
Subject: failure notice
Message-ID: <20261130090007.31337.qmail@mx.mail.example>

Hi. This is the qmail-send program at mx.mail.example.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{original.recipient}>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

{original.headers()}
Les mer.
"""
    )


def yahoo_arf(original: Original, to: str, *, recipient_shown: bool = True) -> bytes:
    """A complaint through Yahoo's (and AOL's) feedback loop, RFC 5965. Yahoo may leave
    the complaining address out (`recipient_shown`)."""
    rcpt = f"Original-Rcpt-To: {original.recipient}\n" if recipient_shown else ""
    return _crlf(
        f"""From: feedbackloop@comcast-yahoo.example
To: {to}
Subject: FW: 60 år siden Jurij Gagarin
Date: Mon, 30 Nov 2026 09:30:00 +0000
Message-ID: <1796034600.4815.arf@fbl.yahoo.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
\tboundary="----=_Part_4815_162342.1796034600"

------=_Part_4815_162342.1796034600
Content-Type: text/plain; charset=us-ascii

This is an email abuse report for an email message from press.example.

------=_Part_4815_162342.1796034600
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: Yahoo!-Mail-Feedback/2.0
Version: 1
Original-Mail-From: <{original.envelope_sender}>
{rcpt}Arrival-Date: Mon, 30 Nov 2026 09:00:01 +0000
Reported-Domain: press.example
Authentication-Results: mta1.yahoo.example; dkim=pass header.d=press.example

------=_Part_4815_162342.1796034600
Content-Type: message/rfc822

{original.headers()}
Content-Type: text/plain; charset=utf-8

Les mer.

------=_Part_4815_162342.1796034600--
"""
    )


def out_of_office(original: Original, to: str) -> bytes:
    return _crlf(
        f"""From: {original.recipient}
To: {to}
Subject: Automatic reply: 60 år siden Jurij Gagarin
Auto-Submitted: auto-replied
X-Auto-Response-Suppress: All
Message-ID: <ooo.1796032800@mail.example>
Date: Mon, 30 Nov 2026 10:00:09 +0100
In-Reply-To: {original.message_id}

I am out of the office until 7 December. For urgent matters write to desk@mail.example.
"""
    )


def challenge(original: Original, to: str) -> bytes:
    """A challenge-response filter asking the sender to prove it is a person."""
    return _crlf(
        f"""From: spam-guard@mail.example
To: {to}
Subject: Please confirm your message
Precedence: auto_reply
Message-ID: <challenge.1796032810@mail.example>
Date: Mon, 30 Nov 2026 10:00:10 +0100

Your message to {original.recipient} is held. Click to confirm you are a person.
"""
    )
