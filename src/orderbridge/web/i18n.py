"""The portal's languages: English (the msgids) and French, chosen per user.

Catalogs are the ``*.po`` files under ``web/locale/<lang>/LC_MESSAGES/`` — one file per screen, so
the people writing screens never edit the same file — read with Babel and merged into one catalog
per language when the app starts. They are compiled in memory (``write_mo`` into a buffer), not
by a build step, so a ``.mo`` file can never be stale and a fresh clone has nothing to compile.

The language of a request is a context variable set by the portal's middleware (the signed-in
user's choice, else the ``ob_lang`` cookie, else ``Accept-Language``), so templates and Python
alike call :func:`gettext` without passing it around. A msgid without a French translation shows
in English; ``tests/web/test_i18n.py`` fails when any msgid of the code or templates lacks one.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import LazyProxy, NullTranslations, Translations

#: the languages the portal ships, the first being the source language of the msgids
LOCALES: tuple[str, ...] = ("en", "fr")
DEFAULT_LOCALE = "en"
LOCALE_DIR = Path(__file__).parent / "locale"

_current: ContextVar[str] = ContextVar("orderbridge_locale", default=DEFAULT_LOCALE)


def catalog(lang: str) -> Catalog:
    """Every ``*.po`` of ``lang`` merged into one catalog (a later file's msgstr wins for a msgid
    two files both translate; the completeness test refuses two different translations)."""
    merged = Catalog(locale=lang)
    folder = LOCALE_DIR / lang / "LC_MESSAGES"
    for po in sorted(folder.glob("*.po")) if folder.is_dir() else []:
        with po.open("rb") as fh:
            for message in read_po(fh, locale=lang):
                if message.id and message.string:
                    merged.add(message.id, message.string, context=message.context)
    return merged


@cache
def translations(lang: str) -> NullTranslations:
    if lang == DEFAULT_LOCALE or lang not in LOCALES:
        return NullTranslations()
    buffer = io.BytesIO()
    write_mo(buffer, catalog(lang))
    buffer.seek(0)
    return Translations(buffer)


def current_locale() -> str:
    return _current.get()


@contextmanager
def using(lang: str) -> Iterator[None]:
    """Run a block in language ``lang`` (an unknown one falls back to English)."""
    token = _current.set(lang if lang in LOCALES else DEFAULT_LOCALE)
    try:
        yield
    finally:
        _current.reset(token)


def set_locale(lang: str) -> None:
    """Set the language for the rest of this request's context (the middleware's call)."""
    _current.set(lang if lang in LOCALES else DEFAULT_LOCALE)


def gettext(message: str, **variables: object) -> str:
    text = translations(_current.get()).ugettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: object) -> str:
    text = translations(_current.get()).ungettext(singular, plural, n)
    return text % {"num": n, **variables}


def lazy_gettext(message: str) -> LazyProxy:
    """A string translated when it is shown, for module-level tables (labels, choices)."""
    return LazyProxy(gettext, message, enable_cache=False)


#: ``N_("…")`` marks a string for extraction where it is translated later, by :func:`gettext`
def N_(message: str) -> str:
    return message


def negotiate(accept_language: str | None) -> str:
    """The best of :data:`LOCALES` for an ``Accept-Language`` header (English when none fits)."""
    if not accept_language:
        return DEFAULT_LOCALE
    wanted: list[tuple[float, str]] = []
    for part in accept_language.split(",")[:20]:
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        wanted.append((weight, tag.strip().replace("_", "-")))
    for _weight, tag in sorted(wanted, key=lambda w: -w[0]):
        language = tag.split("-")[0].lower()
        if language in LOCALES:
            return language
    return DEFAULT_LOCALE


def language_name(lang: str) -> str:
    """A language's own name for itself ("English", "Français"), for the language switch."""
    return (Locale.parse(lang).get_display_name(lang) or lang).capitalize()
