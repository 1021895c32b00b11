"""Language helpers for handlers and templates: which locale a request wants (the `lang`
cookie, else Accept-Language), the scripts' message catalog, and how sizes and times are
written. English and Russian come through Tornado's locale support (catalogs in locale/,
loaded by server.app); the switcher itself is handlers/language.py."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

import tornado.locale
from tornado.escape import json_encode

LANG_COOKIE = "lang"
LANGUAGES = {"en": "English", "ru": "Русский"}
_LOCALE_FOR_LANG = {"en": "en_US", "ru": "ru"}

# Every string the browser scripts show; the page hands them over already translated.
JS_MESSAGES = (
    "Copied!",
    "Press Ctrl+C to copy",
    "Deleting…",
    "Delete",
    "Cancel",
    "Delete?",
    "Delete {name}",
    "Delete {name}? This cannot be undone.",
    "this image",
    "live",
    "reconnecting…",
    "connecting…",
    "Images: {count}",
    "New image: {name}",
    "An image was deleted.",
    "Could not refresh the gallery: {error}",
    "Uploaded ({size})",
    "Only {extensions} and {last} files are accepted.",
    "The file is empty.",
    "The file is {size} MB; the limit is {limit} MB.",
    "The upload failed: the connection was lost.",
    "The server answered {status}.",
    "Copy",
)


def locale_for_cookie(lang: str | None) -> tornado.locale.Locale | None:
    """The locale the switcher's cookie chose; None when it chose nothing we speak."""
    if lang in _LOCALE_FOR_LANG:
        return tornado.locale.get(_LOCALE_FOR_LANG[lang])
    return None


def lang_of(locale: tornado.locale.Locale) -> str:
    """The two-letter language of a locale ("en", "ru"), as pages and cookies name it."""
    return locale.code.split("_")[0]


# Sizes switch from KB to MB at one MB (1024 KB), as people read them: "340.2 KB", "2.5 MB".
_UNITS = {"en": ("KB", "MB"), "ru": ("КБ", "МБ")}


def format_size(size: int, lang: str = "en") -> str:
    """A byte count the way the language writes it: 340.2 KB, 2.5 MB / 340,2 КБ, 2,5 МБ."""
    kb_unit, mb_unit = _UNITS.get(lang, _UNITS["en"])
    # Decided on the rounded KB, so 1,048,575 bytes is "1.0 MB", not "1,024.0 KB".
    kb = round(size / 1024, 1)
    value, unit = (kb, kb_unit) if kb < 1024 else (size / 1024**2, mb_unit)
    text = f"{value:,.1f}"
    if lang == "ru":
        return text.replace(",", "\u00a0").replace(".", ",") + "\u00a0" + unit
    return f"{text} {unit}"


def format_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@functools.cache
def js_messages(locale: tornado.locale.Locale) -> str:
    """The scripts' messages in one language, as JSON (made once per language)."""
    # json_encode escapes "</", so the block can never close its <script> early.
    return json_encode({m: locale.translate(m) for m in JS_MESSAGES})
