"""A release body is quoted-printable encoded once; only the lines with a reader's links are
encoded per reader. The result must be byte for byte what encoding the whole body gives."""

from __future__ import annotations

import pytest

from service.domain.mime import qp as _qp
from service.domain.release_messages import _PREFERENCES, _UNSUBSCRIBE, _EncodedBody

UNSUBSCRIBE = "https://press.example/unsubscribe/.eJyrVipVslIywA8MlWoBq2gIMQ.awbwMw.Dr_iyX48X"
PREFERENCES = "https://press.example/preferences/.eJyrVipVslIywA8MlWoBq2gIMQ.awbwMw.gawuOdwRP"


@pytest.mark.parametrize(
    "body",
    [
        f"Hei\n\nMeld deg av: {_UNSUBSCRIBE}\nSpråk: {_PREFERENCES}",
        f"{_UNSUBSCRIBE}",
        f"first line\n{_UNSUBSCRIBE}\n",
        f"trailing spaces   \n{_UNSUBSCRIBE} \t\nlast line with space ",
        "x" * 300 + f" {_UNSUBSCRIBE} " + "ø" * 200 + f"\n{'y' * 500}\n\n",
        f'<p style="a=b">{"z" * 90}<a href="{_PREFERENCES}">P</a> · '
        f'<a href="{_UNSUBSCRIBE}">U</a></p>',
        "\r\n".join(["crlf line", _UNSUBSCRIBE, "", "end"]),
        ".\n" + _UNSUBSCRIBE + "\n.",
        "no links at all\nnot one",
    ],
)
def test_encoding_once_gives_the_bytes_of_encoding_each_message(body: str) -> None:
    filled = body.replace(_UNSUBSCRIBE, UNSUBSCRIBE).replace(_PREFERENCES, PREFERENCES)
    # The whole body encoded at once (with a final line break, so that even a one-line body
    # gets CRLF soft breaks), then that break taken off again.
    whole = _qp(filled + "\n")[:-2]
    encoded = _EncodedBody(body).fill(UNSUBSCRIBE, PREFERENCES)
    assert encoded == whole
    assert b"\n" not in encoded.replace(b"\r\n", b"")  # no bare line feeds
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
