"""The words around an announcement's text, in its reader's language: which language they are
in, which way it is written, and dates and times as that language writes them.

Two languages matter for one message or page. The *text's* language is what HR wrote (after
the fallback of bulletin.dispatch.translations): it decides the direction of the title and
body. The *words'* language is what the footer, buttons and page furniture are in: the
text's language when Bulletin ships a catalog for it (bulletin/locale), else the
organisation's default. An Arabic announcement with no Arabic catalog is right to left inside
an English frame, rather than English words laid out right to left.

Dates: Babel (CLDR), in the person's own zone: "15 Jan 2026, 09:00 EST" in English,
"15. Jan. 2026, 09:00 EST" in German, "2026年1月15日 9:00 EST" in Japanese. The zone's
abbreviation is the tz database's, the same in every language (CLDR has localised names for
only some zones in some languages, and a mixture reads worse than none).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Literal

import langcodes
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_skeleton
from babel.lists import format_list
from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext, ngettext

from bulletin.domain.languages import base_of, default_language

# The languages whose catalogs ship in bulletin/locale (tests/test_catalogs.py checks each
# is complete); a regional tag ("pt-BR") uses its base language's catalog.
SHIPPED = ("en", "de", "fr", "es", "pt", "ja")
# Scripts written right to left (Unicode's bidirectional class R or AL for their letters):
# Arabic, Hebrew, Thaana, Syriac, N'Ko, Adlam, Hanifi Rohingya, Mandaic, Samaritan. A tag's
# script is its own ("az-Arab") or its language's likely one ("fa" → Arab, "yi" → Hebr).
RTL_SCRIPTS = frozenset({"Arab", "Hebr", "Thaa", "Syrc", "Nkoo", "Adlm", "Rohg", "Mand", "Samr"})

Direction = Literal["rtl", "ltr"]
Style = Literal["medium", "long"]
# CLDR's own forms (each locale orders and punctuates them itself): a day with an
# abbreviated month (the "yMMMd" skeleton), or the locale's full date with the weekday; a
# 24-hour time ("Hm").
_DATE_SKELETON = "yMMMd"
_TIME_SKELETON = "Hm"


@lru_cache(maxsize=256)
def direction(tag: str) -> Direction:
    """ "rtl" for a language written right to left (Arabic, Hebrew, Persian, Urdu, Dhivehi…),
    else "ltr" (an empty or unreadable tag included)."""
    if not tag:
        return "ltr"
    try:
        script = langcodes.Language.get(tag).maximize().script
    except (ValueError, LookupError):
        return "ltr"
    return "rtl" if script in RTL_SCRIPTS else "ltr"


def words_language(tag: str) -> str:
    """The language of the words around a text in ``tag``: ``tag`` itself when a catalog
    ships for it or its base language, else the organisation's default (for Django's
    ``translation.override``)."""
    if tag and base_of(tag) in SHIPPED:
        return tag
    fallback = default_language() or "en"
    return fallback if base_of(fallback) in SHIPPED else "en"


def speaking(tag: str) -> translation.override:
    """``with speaking(employee.language):`` — Django's translations in that person's words'
    language ("" is the organisation's default)."""
    return translation.override(words_language(tag or default_language()))


@lru_cache(maxsize=64)
def babel_locale(tag: str) -> Locale:
    """Babel's locale for a tag; plain "en" is the installation's English (LANGUAGE_CODE,
    British by default: "15 Jan 2026"), anything unknown to CLDR is too."""
    english = Locale.parse(settings.LANGUAGE_CODE, sep="-")
    if not tag or tag.lower() == "en":
        return english
    try:
        return Locale.parse(tag.replace("_", "-"), sep="-")
    except (ValueError, UnknownLocaleError):
        try:
            return Locale.parse(base_of(tag))
        except (ValueError, UnknownLocaleError):
            return english


def when(
    moment: datetime, zone: tzinfo | None = None, tag: str = "", style: Style = "medium"
) -> str:
    """``moment`` as a date and time for a reader of ``tag`` (default: the active language),
    on the clock of ``zone`` (default: the active time zone), with the zone's abbreviation."""
    zone = zone or timezone.get_current_timezone()
    locale = babel_locale(tag or translation.get_language() or "")
    local = moment.astimezone(zone)
    if style == "long":
        date = format_date(local, "full", locale=locale)
    else:
        date = format_skeleton(_DATE_SKELETON, local, tzinfo=zone, locale=locale)
    time = format_skeleton(_TIME_SKELETON, local, tzinfo=zone, locale=locale)
    # "{1}, {0}": the date, then the time; quotes mark literal words in CLDR patterns.
    pattern = str(locale.datetime_formats["medium"]).replace("'", "")
    return pattern.replace("{1}", date).replace("{0}", f"{time} {local.tzname()}")


# --- the email footer's reason and a reminder's title, for bulletin.dispatch.compose ----------


def audience_reason(kind: str, names: Sequence[str], language: str = "") -> str:
    """Why a person got an announcement (the email's footer), in the words' language for a
    text in ``language``: ``kind`` is the audience's kind ("all", "department", "location",
    "list") and ``names`` the departments or locations HR chose, listed as that language
    lists things ("Sales, Support and Legal"; "Vertrieb, Support und Recht")."""
    with speaking(language):
        joined = format_list(list(names), locale=babel_locale(translation.get_language() or ""))
        if kind == "department" and names:
            sentence = ngettext(
                "You are receiving this because it was sent to the %(names)s department.",
                "You are receiving this because it was sent to the %(names)s departments.",
                len(names),
            )
            return sentence % {"names": joined}
        if kind == "location" and names:
            sentence = gettext("You are receiving this because it was sent to people in %(names)s.")
            return sentence % {"names": joined}
        if kind == "list":
            return gettext(
                "You are receiving this because you were chosen as one of its recipients."
            )
        return gettext("You are receiving this because it was sent to everyone.")


def reminder_title(title: str, language: str = "") -> str:
    """A reminder's title: the announcement's, introduced in the words' language."""
    with speaking(language):
        return gettext("Reminder: %(title)s") % {"title": title}
