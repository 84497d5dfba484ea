"""The languages Pressroom speaks, in one table: each one's code (as stored on a subscriber and a
release, and in `?lang=`), its name, its name for itself, and the CLDR locale Babel writes its
dates and numbers with. Norwegian bokmål is the primary language: pages, emails and imports fall
back to it. Plain Python, imported by every layer (the domain included)."""

from __future__ import annotations

from dataclasses import dataclass


def N_(message: str) -> str:
    """Marks a name for translation (pybabel -k N_); the web translates it where it is shown."""
    return message


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1 (BCP 47 primary subtag): "nb", "en"
    name: str  # in English, marked for translation: "Norwegian"
    endonym: str  # the language's name for itself, on links to a version in it: "Norsk"
    babel_locale: str  # CLDR locale for dates and numbers (babel.dates, babel.numbers)


TABLE = (
    Language("nb", N_("Norwegian"), "Norsk", "nb_NO"),
    # British English dates ("28 March 2027") on pages, the desk and in emails alike
    # (service/web/l10n.py, domain/release_messages.py), not CLDR "en"'s "March 28, 2027".
    Language("en", N_("English"), "English", "en_GB"),
)
BY_CODE = {language.code: language for language in TABLE}
LANGUAGES = tuple(BY_CODE)  # the codes, the primary language first
PRIMARY_LANGUAGE = TABLE[0].code
API_LANGUAGE = "en"  # the JSON API answers in English unless Accept-Language asks for another
# Every tag of the Norwegian macrolanguage reads as bokmål, the Norwegian we are written in.
NORWEGIAN_TAGS = frozenset({"nb", "no", "nn"})


def babel_locale(code: str) -> str:
    """The CLDR locale for a language code; the primary language's for a code we do not speak."""
    return BY_CODE.get(code, BY_CODE[PRIMARY_LANGUAGE]).babel_locale


def name(code: str) -> str:
    """A language's English name (to be translated by the caller); the code when unknown."""
    language = BY_CODE.get(code)
    return language.name if language else code


def endonym(code: str) -> str:
    """A language's name for itself; the code when unknown."""
    language = BY_CODE.get(code)
    return language.endonym if language else code
