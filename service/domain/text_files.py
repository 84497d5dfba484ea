"""A text file someone hands us, read as the program that wrote it meant it.

The encoding is told by the byte order mark: UTF-8 with or without one (Excel's "CSV UTF-8"
writes one), UTF-16 with one (Excel's "Unicode text"; RFC 2781 §3.2). A file whose first
bytes alternate with NUL is UTF-16 without a mark (a CSV file starts with ASCII). Anything
else must be UTF-8: Excel's plain "CSV" is Windows-1252, and guessing between the 8-bit code
pages would silently turn "ø" into something else.

The whole file is decoded once before any of it is used, so that a file that is not what it
claims is refused whole: importing it up to its first bad byte would leave half of it in.
"""

from __future__ import annotations

import codecs
import io
from typing import BinaryIO

from service.domain.errors import N_, DomainError, ErrorKind

BLOCK_SIZE = 1 << 20
_MARKS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


class UnreadableText(DomainError):
    code = "invalid_file"
    kind = ErrorKind.INVALID
    message = N_("The file could not be read as text.")


class NotUtf8(UnreadableText):
    code = "not_utf8"
    message = N_(
        'The file is not UTF-8 (line %(line)s): save it as UTF-8 (in Excel: "CSV UTF-8") '
        "and try again. Nothing was imported."
    )


class NotUtf16(UnreadableText):
    code = "not_utf16"
    message = N_(
        "The file starts as UTF-16 but is not (line %(line)s): save it again "
        '(in Excel: "CSV UTF-8") and try again. Nothing was imported.'
    )


def detect_encoding(head: bytes) -> tuple[str, int]:
    """The codec of a file that starts with `head` (its first 4 bytes or more), and the length
    of its byte order mark (0 when it has none)."""
    for mark, codec in _MARKS:
        if head.startswith(mark):
            return codec, len(mark)
    if len(head) >= 2 and head[0] and not head[1]:
        return "utf-16-le", 0
    if len(head) >= 2 and not head[0] and head[1]:
        return "utf-16-be", 0
    return "utf-8", 0


def open_text(stream: BinaryIO) -> io.TextIOWrapper:
    """A seekable binary stream as text, from its current position, with the byte order mark
    left out and line ends kept as they are (`newline=""`, as the csv module wants).

    Reads the stream to its end first. Raises NotUtf8 or NotUtf16, naming the first physical
    line that does not decode (a line ends at CR LF, LF or CR).
    """
    start = stream.tell()
    codec, mark = detect_encoding(stream.read(4))
    stream.seek(start + mark)
    _require(stream, codec)
    stream.seek(start + mark)
    return io.TextIOWrapper(stream, encoding=codec, newline="")


def _require(stream: BinaryIO, codec: str) -> None:
    decoder = codecs.getincrementaldecoder(codec)()
    counter = _LineCounter()
    try:
        while block := stream.read(BLOCK_SIZE):
            counter.feed(decoder.decode(block))
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as error:
        # What the decoder held back and this block, up to the bad bytes, decodes cleanly.
        counter.feed(error.object[: error.start].decode(codec, errors="replace"))
        refusal = NotUtf8 if codec == "utf-8" else NotUtf16
        raise refusal(line=counter.line) from None


class _LineCounter:
    """The physical line that text fed so far ends on; CR LF counts once, even split."""

    def __init__(self) -> None:
        self.line = 1
        self._after_cr = False

    def feed(self, text: str) -> None:
        if not text:
            return
        breaks = text.count("\n") + text.count("\r") - text.count("\r\n")
        if self._after_cr and text.startswith("\n"):
            breaks -= 1
        self.line += breaks
        self._after_cr = text.endswith("\r")
