"""Numbers, percentages, durations and dates written the way the page's language writes them.

Every number a person reads on a page goes through Babel for the request's locale (CLDR data):
"37,5" and "1 200" in bokmål, "37.5" and "1,200" in English. Templates get `number`, `signed`,
`percent` and `duration`; the Jinja `_()` and `ngettext()` write the numbers they are given
the same way, so "%(num)s subscribers" reads "1 200 abonnenter". The desk's scripts format with
`Intl.NumberFormat` for the page's `<html lang>`, which follows the same CLDR rules.

Dates use the language's CLDR locale from service/locales.py (nb_NO, en_GB), the one the emails
use, so a release dated "28 March 2027" in its English email is dated so on its page too.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import babel.dates
from babel import Locale
from babel.numbers import get_minus_sign_symbol, get_plus_sign_symbol
from babel.units import format_unit
from flask import Flask
from flask_babel import get_locale, get_timezone, get_translations, to_user_timezone
from jinja2 import pass_context
from jinja2.runtime import Context

from service.locales import PRIMARY_LANGUAGE, babel_locale

Number = int | float | Decimal


def _locale() -> Locale:
    return get_locale() or Locale.parse(PRIMARY_LANGUAGE)


def date_locale() -> Locale:
    """The CLDR locale dates are written in: the page's language's from locales.TABLE."""
    return Locale.parse(babel_locale(str(get_locale() or PRIMARY_LANGUAGE)))


def format_date(value: date | datetime, format: str = "medium") -> str:
    """A day ("28. mars 2027", "28 March 2027" for "long"); a datetime's day in TIMEZONE."""
    if isinstance(value, datetime):
        value = to_user_timezone(value).date()
    return babel.dates.format_date(value, format, locale=date_locale())


def format_datetime(value: datetime, format: str = "medium") -> str:
    """A moment as read on the desk's clock (TIMEZONE): "28 Mar 2027, 14:00:00" for "medium"."""
    return babel.dates.format_datetime(value, format, tzinfo=get_timezone(), locale=date_locale())


def _with_signs(text: str, value: Number, locale: Locale) -> str:
    """Babel writes a pattern's sign as ASCII; CLDR's symbol for the locale replaces it
    (U+2212 MINUS SIGN in bokmål, as Intl.NumberFormat writes it)."""
    if value < 0 and text.startswith("-"):
        return get_minus_sign_symbol(locale) + text[1:]
    if text.startswith("+"):
        return get_plus_sign_symbol(locale) + text[1:]
    return text


def number(value: Number, *, digits: int = 0) -> str:
    """`value` with the locale's separators and at most `digits` decimals (fewer when they
    are zeros): 1200 -> "1 200", 37.5 -> "37,5" in bokmål."""
    locale = _locale()
    pattern = copy.copy(locale.decimal_formats[None])
    pattern.frac_prec = (0, digits)
    return _with_signs(pattern.apply(value, locale), value, locale)


def signed(value: int) -> str:
    """A change, with its sign: "+2", "−3" (U+2212 in bokmål), "0"."""
    text = number(value)
    if value > 0:
        return get_plus_sign_symbol(_locale()) + text
    return text


def percent(fraction: Number | None, *, digits: int = 1) -> str:
    """A share (0.375) as the locale writes a percentage ("37,5 %" in bokmål, "37.5%" in
    English), at most `digits` decimals; None is a dash."""
    if fraction is None:
        return "–"
    locale = _locale()
    pattern = copy.copy(locale.percent_formats[None])
    pattern.frac_prec = (0, digits)
    return _with_signs(pattern.apply(fraction, locale), fraction, locale)


def duration(seconds: Number | None) -> str:
    """A time left, in the steps desk-send.js uses: seconds under 90 s, minutes under 90 min,
    else hours with a decimal ("20 sek", "4 min", "1,5 t" in bokmål); None is a dash."""
    if seconds is None:
        return "–"
    seconds = max(0, -(-seconds // 1))  # whole seconds, rounded up
    locale = _locale()
    if seconds < 90:
        return format_unit(int(seconds), "duration-second", "short", locale=locale)
    if seconds < 5400:
        return format_unit(round(seconds / 60), "duration-minute", "short", locale=locale)
    hours = Decimal(seconds / 3600).quantize(Decimal("0.1"))
    return format_unit(hours, "duration-hour", "short", locale=locale)


# Numbers that name a thing rather than count it (a line of a file, a year): written as they are.
IDENTIFIERS = frozenset({"line", "first", "last", "year"})


def localized(params: Mapping[str, Any]) -> dict[str, Any]:
    """A message's parameters with every quantity written for the locale (bools and the
    IDENTIFIERS kept as they are)."""
    return {
        name: number(value, digits=2)
        if isinstance(value, int | float | Decimal)
        and not isinstance(value, bool)
        and name not in IDENTIFIERS
        else value
        for name, value in params.items()
    }


def gettext(message: str, **params: Any) -> str:
    """flask_babel.gettext, with the numbers among `params` written for the locale."""
    text = get_translations().ugettext(message)
    return text % localized(params) if params else text


def ngettext(singular: str, plural: str, num: int, **params: Any) -> str:
    """flask_babel.ngettext; `%(num)s` and the other numbers written for the locale."""
    text = get_translations().ungettext(singular, plural, num)
    return text % localized({"num": num, **params})


def init_app(app: Flask) -> None:
    """Templates' `_()`/`gettext()`/`ngettext()` write numbers for the locale, and the page
    helpers are there. After Flask-Babel's init_app, whose callables these wrap."""
    env = app.jinja_env
    plain_gettext, plain_ngettext = env.globals["gettext"], env.globals["ngettext"]

    @pass_context
    def template_gettext(context: Context, message: str, **params: Any) -> str:
        return plain_gettext(context, message, **localized(params))  # type: ignore[operator]

    @pass_context
    def template_ngettext(
        context: Context, singular: str, plural: str, num: int, **params: Any
    ) -> str:
        variables = localized({"num": num, **params})
        return plain_ngettext(context, singular, plural, num, **variables)  # type: ignore[operator]

    env.globals.update(
        gettext=template_gettext,
        _=template_gettext,
        ngettext=template_ngettext,
        number=number,
        signed=signed,
        percent=percent,
        duration=duration,
        format_date=format_date,
        format_datetime=format_datetime,
    )
