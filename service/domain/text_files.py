"""Checks on a file someone hands us before any of it is used."""

from __future__ import annotations

import codecs
from typing import BinaryIO

from service.domain.errors import N_
from service.domain.imports import ImportFileError

BLOCK_SIZE = 1 << 20


class NotUtf8(ImportFileError):
    code = "not_utf8"
    message = N_(
        'The file is not UTF-8 (line %(line)s): save it as UTF-8 (in Excel: "CSV UTF-8") '
        "and try again. Nothing was imported."
    )


def require_utf8(stream: BinaryIO) -> None:
    """Read a seekable binary stream to its end and back: refuse it unless it is all UTF-8.

    Excel's plain "CSV" is Windows-1252; importing such a file up to its first "ø" would leave
    half of it in, which is worse than none of it.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    start = stream.tell()
    try:
        while block := stream.read(BLOCK_SIZE):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as error:
                raise NotUtf8(line=line + block.count(b"\n", 0, error.start)) from None
            line += block.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise NotUtf8(line=line) from None
    finally:
        stream.seek(start)
