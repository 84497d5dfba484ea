"""The text/plain part reads as a person would type it (issue 10, item 2): no Markdown
marks, links as "text (URL)", lists and headings kept, lines wrapped at 72 columns but no
URL ever broken. Rendered from markdown-it-py's syntax tree (service/domain/plain_text.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from service.config import Settings
from service.domain import releases
from service.domain.emails import EmailRenderer
from service.domain.mail_site import MailSite
from service.domain.plain_text import WIDTH, markdown_to_text, wrap_text
from service.domain.release_messages import ReleaseMessage
from service.domain.tokens import TokenSigner

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
NASA = "https://www.nasa.gov/history/60-years-ago-gagarin-becomes-first-human-to-orbit-earth/"
GAGARIN = (
    f"Den **12. april 1961** ble Jurij Gagarin det første mennesket i verdensrommet, "
    f"skriver [NASA]({NASA})."
)
CODE = "print('en lang kodelinje som aldri brytes, uansett hvor lang den blir i eposten')"
LONG_URL = "https://www.example.org/" + "a" * 70 + "/rapport-2026-final.pdf?utgave=2&side=14"


def fits(text: str) -> bool:
    """Every line at most WIDTH columns, but for a line of one word (a URL) that cannot be."""
    return all(len(line) <= WIDTH or " " not in line.strip() for line in text.split("\n"))


def test_the_issues_example_reads_as_plain_text() -> None:
    text = markdown_to_text(GAGARIN)
    assert "**" not in text and "[NASA]" not in text and "](" not in text
    assert "12. april 1961" in text
    assert f"NASA ({NASA})" in " ".join(text.split())
    assert any(NASA in line for line in text.split("\n"))  # the URL whole, on one line
    assert fits(text)


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("*kursiv* og __fet__ og ***begge*** og **fet *nestet* fet**",
         "kursiv og fet og begge og fet nestet fet"),
        ("`kode` og ~~strøket~~", "kode og strøket"),
        ("[https://esa.int](https://esa.int)", "https://esa.int"),
        ("<https://esa.int/ø>", "https://esa.int/ø"),
        ("[presse@nasa.example](mailto:presse@nasa.example)", "presse@nasa.example"),
        ("[Skriv til oss](mailto:presse@nasa.example)", "Skriv til oss (presse@nasa.example)"),
        ("[ESA](https://esa.int \"European Space Agency\")", "ESA (https://esa.int)"),
        ("![Gagarin i drakt](https://img.example/g.jpg)", "Gagarin i drakt (https://img.example/g.jpg)"),
        ("![](https://img.example/g.jpg)", "https://img.example/g.jpg"),
        ("[**Fet** lenke](https://esa.int)", "Fet lenke (https://esa.int)"),
        ("Linje en  \nlinje to\\\nlinje tre", "Linje en\nlinje to\nlinje tre"),
        ("mykt\nlinjeskift", "mykt linjeskift"),
        ("<p>HTML <b>blokk</b> &amp; tekst</p>", "HTML blokk & tekst"),
        ("Innebygd <b>HTML</b> og<br>linjeskift", "Innebygd HTML og\nlinjeskift"),
        ("<div>tekst<script>alert(1)</script></div>", "tekst"),
        ("Pris: 5 &lt; 6 &amp; 7", "Pris: 5 < 6 & 7"),
        ("[lenke](ftp://files.example/f)", "lenke"),
        ("", ""),
    ],
)  # fmt: skip
def test_inline_marks_become_text(markdown: str, expected: str) -> None:
    assert markdown_to_text(markdown) == expected


def test_headings_are_underlined() -> None:
    text = markdown_to_text("# Gagarin\n\nTekst.\n\n## **Fakta** om Vostok\n\n### Mer")
    assert text == ("Gagarin\n=======\n\nTekst.\n\nFakta om Vostok\n---------------\n\nMer\n---")
    setext = markdown_to_text("Gagarin\n=======\n\nVostok\n------")
    assert setext == "Gagarin\n=======\n\nVostok\n------"


def test_lists_keep_their_marks_and_indent_what_runs_on() -> None:
    markdown = (
        "* Vostok 1 gikk én gang rundt jorden på 108 minutter, fra Bajkonur til landing "
        "nær Engels\n"
        "* **to**\n"
        "  * nestet\n"
        "\n"
        "3. tre\n"
        "4. fire\n"
    )
    text = markdown_to_text(markdown)
    assert text == (
        "- Vostok 1 gikk én gang rundt jorden på 108 minutter, fra Bajkonur til\n"
        "  landing nær Engels\n"
        "- to\n"
        "  - nestet\n"
        "\n"
        "3. tre\n"
        "4. fire"
    )
    loose = markdown_to_text("1. en\n\n   mer om en\n\n2. to\n")
    assert loose == "1. en\n\n   mer om en\n\n2. to"


def test_quotes_code_and_rules() -> None:
    markdown = (
        "> Jeg ser jorden. Den er så vakker! Det er Gagarins ord fra bane, gjengitt i "
        "mange bøker.\n\n"
        f"```\n{CODE}\n```\n\n"
        "---\n\nSlutt."
    )
    text = markdown_to_text(markdown)
    assert text.startswith(
        "> Jeg ser jorden. Den er så vakker! Det er Gagarins ord fra bane,\n"
        "> gjengitt i mange bøker.\n\n"
    )
    assert (
        "\n    print('en lang kodelinje som aldri brytes, uansett hvor lang den blir i eposten')\n"
        in text
    )
    assert text.endswith("\n\n* * *\n\nSlutt.")


def test_long_urls_are_never_broken_and_prose_is_wrapped() -> None:
    markdown = (
        "Gagarin landet i Saratov-regionen etter 108 minutter i bane rundt jorden. " * 3
    ) + f"Hele rapporten: {LONG_URL} og [rapporten]({LONG_URL}), side-ved-side."
    text = markdown_to_text(markdown)
    assert fits(text)
    assert all(len(line) >= 40 for line in text.split("\n")[:2])  # wrapped, not chopped
    assert sum(LONG_URL in line for line in text.split("\n")) == 2
    assert "side-ved-side" in text  # no break at hyphens


def test_a_summary_is_wrapped_and_keeps_its_own_lines() -> None:
    summary = "Den 12. april 1961 ble Gagarin det første mennesket i verdensrommet. " * 3
    text = wrap_text(summary + "\nAndre linje")
    assert fits(text) and text.endswith("\nAndre linje")


def release_text(language: str = "nb", *, test: bool = False, **fields: str) -> str:
    config = Settings(
        secret_key="test-secret-key-not-for-production",
        redis_url="redis://unused",
        mail_from="Pressroom <noreply@press.example>",
        testing=True,
    )
    raw = {"title": "Gagarin", "summary": "", "body": GAGARIN, "language": language} | fields
    draft = releases.parse_release(raw, now=NOW)
    release = releases.release_from_draft(draft, slug="gagarin", id=7, published_at=NOW)
    message = ReleaseMessage(
        EmailRenderer(), TokenSigner("test-secret-key-not-for-production"),
        MailSite.from_settings(config), release, language, now=NOW, test=test,
    )  # fmt: skip
    parsed = message_from_bytes(message.for_recipient("r@mail.example", "u"), policy=policy.default)
    return parsed.get_body(("plain",)).get_content().replace("\r\n", "\n")


@pytest.mark.parametrize("test", [False, True])
def test_a_release_and_its_test_copy_have_a_plain_text_part(test: bool) -> None:
    title = "60 år siden Jurij Gagarin erobret verdensrommet som det første mennesket i bane"
    summary = "Den 12. april 1961 skjøt Sovjetunionen opp Vostok 1 fra Bajkonur-kosmodromen. " * 2
    text = release_text(test=test, title=title, summary=summary)
    assert "**" not in text and "](" not in text
    assert f"NASA ({NASA})" in " ".join(text.split())
    body = text.split("\n--\n")[0]
    assert fits(body)
    title_lines = body.split("\n=")[0].split("\n")[-2:]
    assert " ".join(title_lines) == title
