"""A multipart/alternative body (text/plain, then text/html, both UTF-8 quoted-printable),
written byte by byte, with every header line through mail_headers.

RFC 2045 §6.7 (quoted-printable: lines at most 76 characters, `=` always encoded, so no body
line can ever read as a boundary `--==pressroom-...`), RFC 2046 §5.1 (multipart, boundaries),
RFC 2046 §5.1.4 (alternative: the preferred part last).
"""

from __future__ import annotations

import binascii
import uuid

from service.domain import mail_headers

CRLF = b"\r\n"


def lines_of(text: str) -> str:
    """Text with every line break as LF: CRLF and a lone CR too. A bare CR must never reach
    the wire (RFC 5321 §2.3.8; with a dot between two, it is the SMTP smuggling sequence)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def qp(text: str) -> bytes:
    """Text as quoted-printable UTF-8 with CRLF line ends (soft breaks too when the text
    ends in a line break); any line break in `text`, a lone CR too, becomes CRLF."""
    data = lines_of(text).replace("\n", "\r\n").encode("utf-8")
    return binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)


def new_boundary() -> str:
    """Random, and beginning with `==`, which quoted-printable never leaves in a body."""
    return "==pressroom-" + uuid.uuid4().hex


def alternative_headers(boundary: str) -> bytes:
    """MIME-Version and Content-Type of the whole message."""
    return mail_headers.structured("MIME-Version", "1.0") + mail_headers.structured(
        "Content-Type", f'multipart/alternative; boundary="{boundary}"'
    )


def part_head(boundary: str, subtype: str) -> bytes:
    """The delimiter line and headers of one part, up to and including its blank line."""
    return (
        b"--" + boundary.encode("ascii") + CRLF
        + mail_headers.structured("Content-Type", f"text/{subtype}; charset=utf-8")
        + mail_headers.structured("Content-Transfer-Encoding", "quoted-printable")
        + CRLF
    )  # fmt: skip


def close(boundary: str) -> bytes:
    return b"--" + boundary.encode("ascii") + b"--" + CRLF


def alternative_body(boundary: str, text: str, html: str) -> bytes:
    """The body after the message's blank line: both parts, encoded, and the close."""
    return (
        part_head(boundary, "plain") + qp_lines(text) + CRLF
        + part_head(boundary, "html") + qp_lines(html) + CRLF
        + close(boundary)
    )  # fmt: skip


def qp_lines(text: str) -> bytes:
    """`qp` of text without a final line break."""
    # Encoded with a line break after it, so that soft breaks come out as CRLF too.
    return qp(text + "\n")[: -len(CRLF)]
