"""The gettext catalogs are complete, compiled and in step with the source strings.

Regenerate them with `make translations` (extract → update → compile), then translate any new
nb entry in service/translations/nb/LC_MESSAGES/messages.po and run `make translations` again.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from service.domain.emails import EmailRenderer

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "service" / "translations"
POT = TRANSLATIONS / "messages.pot"
LOCALES = ("nb", "en")
# The same keywords as the `translations` target of the Makefile.
EXTRA_KEYWORDS = ("_l", "N_")
PLACEHOLDER = re.compile(r"%\([a-z_]+\)s")


def po_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"


def load_po(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def msgids(catalog: Catalog) -> set[str | tuple[str, ...]]:
    return {message.id for message in catalog if message.id}


def translated(catalog: Catalog) -> dict[str | tuple[str, ...], object]:
    """What a compiled catalog holds: every translated, non-fuzzy message but the header.

    Plural messages come back from a .mo file as lists (compared as tuples), and an
    untranslated plural is compiled as its msgids: what a lookup gives without a catalog."""

    def same(value: object) -> object:
        return tuple(value) if isinstance(value, list | tuple) else value

    def translated_forms(message: Message) -> bool:
        forms = same(message.string)
        filled = all(forms) if isinstance(forms, tuple) else bool(forms)
        return filled and forms != same(message.id)

    return {
        same(message.id): same(message.string)  # type: ignore[misc]
        for message in catalog
        if message.id and not message.fuzzy and translated_forms(message)
    }


def test_every_nb_message_is_translated() -> None:
    catalog = load_po(po_path("nb"), "nb")
    assert msgids(catalog), "the nb catalog is empty"
    untranslated = [message.id for message in catalog if message.id and not message.string]
    fuzzy = [message.id for message in catalog if message.id and message.fuzzy]
    assert not untranslated, f"nb msgstr missing for: {untranslated}"
    assert not fuzzy, f"nb msgstr marked fuzzy (check, then remove the flag): {fuzzy}"


def test_nb_keeps_every_placeholder() -> None:
    catalog = load_po(po_path("nb"), "nb")
    problems = [f"{message.id!r}: {errors}" for message, errors in catalog.check()]
    assert not problems, "\n".join(problems)
    for message in catalog:
        if message.id and isinstance(message.id, str) and isinstance(message.string, str):
            expected = sorted(PLACEHOLDER.findall(message.id))
            assert sorted(PLACEHOLDER.findall(message.string)) == expected, message.id


@pytest.mark.parametrize("locale", LOCALES)
def test_compiled_catalog_matches_po(locale: str) -> None:
    po = load_po(po_path(locale), locale)
    mo_file = po_path(locale).with_suffix(".mo")
    assert mo_file.exists(), f"{mo_file} is missing: run `make translations`"
    with mo_file.open("rb") as handle:
        mo = read_mo(handle)
    assert translated(mo) == translated(po), (
        f"{mo_file.relative_to(ROOT)} is out of date with its .po: run `make translations`"
    )


@pytest.fixture(scope="module")
def fresh_msgids(tmp_path_factory: pytest.TempPathFactory) -> set[str | tuple[str, ...]]:
    """What `pybabel extract`, run as the Makefile runs it, finds in the sources now."""
    output = tmp_path_factory.mktemp("extract") / "messages.pot"
    keywords = [arg for keyword in EXTRA_KEYWORDS for arg in ("-k", keyword)]
    command = [sys.executable, "-m", "babel.messages.frontend", "-q", "extract"]
    command += ["-F", "babel.cfg", *keywords, "-o", str(output), "."]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, timeout=60)
    found = msgids(load_po(output))
    # Guard against a silently broken babel.cfg: the email templates' {% trans %} blocks and
    # the N_() messages of the domain must be among what was found.
    assert "Confirm your subscription to %(site_name)s" in found
    assert "This link has expired." in found
    return found


@pytest.mark.parametrize(
    "path", [POT, *map(po_path, LOCALES)], ids=["pot", *(f"{locale}.po" for locale in LOCALES)]
)
def test_catalog_has_every_extracted_string(
    path: Path, fresh_msgids: set[str | tuple[str, ...]]
) -> None:
    missing = fresh_msgids - msgids(load_po(path))
    assert not missing, (
        f"{path.relative_to(ROOT)} lacks {sorted(map(str, missing))}: run `make translations`"
    )


def test_nb_confirmation_email_is_norwegian() -> None:
    renderer = EmailRenderer()
    context = {
        "site_name": "Pressroom",
        "confirm_url": "http://x.example/confirm/abc",
        "valid_days": 7,
    }
    nb = renderer.render("subscriber/confirm", "nb", **context)
    en = renderer.render("subscriber/confirm", "en", **context)
    assert "Bekreft" in nb.subject
    assert "abonnementet" in nb.subject
    assert "Pressroom" in nb.subject
    assert "Hei," in nb.text
    assert "trolig du" in nb.html
    assert en.subject == "Confirm your subscription to Pressroom"
