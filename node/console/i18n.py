"""Languages of the console: English (the msgids) and French (``locale/fr``).

Catalogs are gettext ``.po`` files compiled in memory when first used, so no binary
``.mo`` is kept in the repository. Strings in Python code are marked with ``N_`` and
translated where they are shown. Dates and numbers follow the language's conventions
(Babel); times are shown in UTC, as the node and its peers keep them.

Refresh the catalog after changing texts (the tests fail until it is done)::

    pybabel extract --no-location --sort-output --project kpnet --version 0.1 \
        -F node/console/babel.cfg -o node/console/locale/messages.pot .
    pybabel update --no-location --width 100 --no-fuzzy-matching \
        -i node/console/locale/messages.pot -d node/console/locale
"""

from __future__ import annotations

import datetime as dt
import gettext as gettext_module
import io
import re
from dataclasses import dataclass
from datetime import UTC
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"
LANGUAGE_NAMES = {"en": "English", "fr": "Français"}  # each in its own language
_ACCEPT_ITEM = re.compile(
    r"^\s*([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*q=([0-9.]+))?\s*$"
)


def N_(message: str) -> str:
    """Mark a string for translation where it is defined; translate it where shown."""
    return message


@cache
def catalog(language: str) -> gettext_module.NullTranslations:
    """The compiled catalog of ``language`` (English: the msgids themselves)."""
    po_file = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if language == DEFAULT_LANGUAGE or not po_file.is_file():
        return gettext_module.NullTranslations()
    with po_file.open("rb") as handle:
        messages = read_po(handle, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, messages)  # fuzzy entries are left out, as msgfmt does
    compiled.seek(0)
    return gettext_module.GNUTranslations(compiled)


def negotiate(accept_language: str | None) -> str:
    """The best of our languages for an ``Accept-Language`` header."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language or "").split(",")[:20]):
        match = _ACCEPT_ITEM.match(item)
        if not match:
            continue
        try:
            quality = float(match.group(2)) if match.group(2) else 1.0
        except ValueError:
            continue
        primary = match.group(1).split("-")[0].lower()
        if quality > 0 and primary in LANGUAGES:
            ranked.append((-quality, position, primary))
    return sorted(ranked)[0][2] if ranked else DEFAULT_LANGUAGE


@dataclass(frozen=True)
class Translator:
    """Everything language-dependent for one request."""

    language: str

    @property
    def _catalog(self) -> gettext_module.NullTranslations:
        return catalog(self.language)

    def gettext(self, message: str) -> str:
        return self._catalog.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._catalog.ngettext(singular, plural, n)

    @property
    def locale(self) -> Locale:
        return Locale.parse(self.language)

    def datetime(self, value: dt.datetime | None, format: str = "medium") -> str:
        if value is None:
            return ""
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return f"{format_datetime(value, format, tzinfo=UTC, locale=self.language)} UTC"

    def date(self, value: dt.date | str | None, format: str = "medium") -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            try:
                parsed = dt.date.fromisoformat(value)
            except ValueError:
                return value  # partial dates of birth (YYYY, YYYY-MM) are shown as given
            value = parsed
        return format_date(value, format, locale=self.language)

    def country(self, code: str | None) -> str:
        """The country of a code or node id (``CF``, ``CF-usaf``) in this language."""
        if not code:
            return ""
        return str(self.locale.territories.get(code[:2].upper(), code))

    def number(self, value: float | int) -> str:
        return format_decimal(value, locale=self.language)


def translator(language: str | None) -> Translator:
    return Translator(language if language in LANGUAGES else DEFAULT_LANGUAGE)
