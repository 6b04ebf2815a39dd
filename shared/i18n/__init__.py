"""Languages of the people who read KPI Pulse: message catalogs and locale-aware formats.

Every user-facing string is an English msgid wrapped in ``_()`` (Python) or ``t()`` (the
page's JavaScript) and translated through the gettext catalogs under ``locales/``. The
``.po`` files are the source; they are compiled to gettext's binary form once per process,
when a locale is first asked for (``compile_catalog``), so nothing generated is committed and
a ``.po`` edit shows at the next start. Numbers, currencies and dates are formatted by Babel
with the CLDR data of the locale.

The company's locale is a setting (``KPIPULSE_COMPANY__LOCALE``); a person's own choice, once
users exist, goes through ``LocalePolicy.for_person`` (the hook users plug into).
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from functools import cache
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, get_timezone_gmt
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal

LOCALES_DIR: Final = Path(__file__).resolve().parent / "locales"
DOMAIN: Final = "kpipulse"
SUPPORTED: Final = ("en", "vi")
DEFAULT_LOCALE: Final = "en"


def po_path(locale: str) -> Path:
    return LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def compile_catalog(locale: str) -> gettext.NullTranslations:
    """The locale's catalog compiled in memory; English is the msgids themselves."""
    path = po_path(locale)
    if not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=locale, domain=DOMAIN)
    buffer = io.BytesIO()
    # Fuzzy entries are guesses a translator has not confirmed: never shown.
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def messages(locale: str) -> dict[str, str]:
    """msgid -> translation of every confirmed entry (what the page's ``t()`` reads)."""
    path = po_path(locale)
    if not path.exists():
        return {}
    with path.open("rb") as source:
        catalog = read_po(source, locale=locale, domain=DOMAIN)
    return {
        str(message.id): str(message.string)
        for message in catalog
        if message.id and message.string and not message.fuzzy and isinstance(message.id, str)
    }


def normalize(locale: str | None) -> str | None:
    """A supported locale code from a tag such as ``vi-VN`` or ``en_US``; None otherwise."""
    if not locale:
        return None
    base = locale.replace("-", "_").split("_")[0].lower()
    return base if base in SUPPORTED else None


@dataclass(frozen=True)
class Translator:
    """One locale's strings and formats; pass it to whatever renders text for people."""

    locale: str
    time_zone: tzinfo = field(default_factory=lambda: ZoneInfo("UTC"))
    _catalog: gettext.NullTranslations = field(
        default_factory=gettext.NullTranslations, repr=False, compare=False
    )

    def gettext(self, message: str, **params: object) -> str:
        text = self._catalog.gettext(message)
        return text.format(**params) if params else text

    def ngettext(self, singular: str, plural: str, n: int, **params: object) -> str:
        text = self._catalog.ngettext(singular, plural, n)
        return text.format(n=self.number(n), **params)

    @property
    def babel_locale(self) -> Locale:
        return Locale.parse(self.locale)

    def number(self, value: float | None) -> str:
        if value is None:
            return self.gettext("no data")
        return str(format_decimal(value, locale=self.locale))

    def currency(self, value: float, currency: str) -> str:
        """VND shows whole đồng (its CLDR digits are 0): 1.234.567 ₫ in Vietnamese."""
        return str(format_currency(value, currency, locale=self.locale))

    def percent(self, ratio: float) -> str:
        return str(format_decimal(ratio * 100, format="#,##0.##", locale=self.locale)) + " %"

    def date(self, day: date) -> str:
        return str(format_date(day, format="medium", locale=self.locale))

    def datetime(self, moment: datetime) -> str:
        """In the company's zone, which the offset names: readers may sit elsewhere."""
        local = moment.astimezone(self.time_zone)
        text = format_datetime(local, format="medium", tzinfo=self.time_zone, locale=self.locale)
        offset = get_timezone_gmt(local, width="iso8601", locale=self.locale)
        return f"{text} {offset}"


@cache
def translator(locale: str, time_zone: str = "UTC") -> Translator:
    code = normalize(locale) or DEFAULT_LOCALE
    return Translator(code, ZoneInfo(time_zone), compile_catalog(code))


# Given a person's address (email, user id), their own language if they chose one.
PersonLocale = Callable[[str], str | None]


def _no_preference(_person: str) -> str | None:
    return None


@dataclass(frozen=True)
class LocalePolicy:
    """Which language a person reads: their own choice where users exist, else the company's.

    ``preference`` is the hook for users: it maps an address to the locale that person set.
    """

    company_locale: str = DEFAULT_LOCALE
    time_zone: str = "UTC"
    preference: PersonLocale = _no_preference

    def for_person(self, person: str | None) -> Translator:
        chosen = normalize(self.preference(person)) if person else None
        return translator(chosen or self.company_locale, self.time_zone)

    def for_request(self, requested: str | None, person: str | None = None) -> Translator:
        """A page view: an explicit ``?lang=`` first, then the person's, then the company's."""
        code = normalize(requested)
        if code is not None:
            return translator(code, self.time_zone)
        return self.for_person(person)


def N_(message: str) -> str:
    """Marks a msgid for the catalogs where it is defined; translated where it is shown."""
    return message


ENGLISH: Final = Translator(DEFAULT_LOCALE)
