"""Language tags: BCP 47, kept in one canonical spelling so that comparing two is comparing
two strings (in Python and in SQL alike).

``langcodes.standardize_tag`` gives the canonical form ("pt-br" → "pt-BR", "zh_Hant" →
"zh-Hant", "iw" → "he") and ``langcodes.tag_is_valid`` says whether a tag is well formed and
made of registered subtags (BCP 47, RFC 5646 §2.2.9: "valid" means every subtag is in the IANA
registry). An empty tag means "the organisation's default" (``BULLETIN_DEFAULT_LANGUAGE``).
"""

from __future__ import annotations

import langcodes
from django.core.exceptions import ValidationError

# RFC 5646 §4.4.1: implementations need not support tags longer than 35 characters; the
# columns holding a tag are that wide.
LONGEST_TAG = 35


class UnknownLanguage(ValueError):
    """A tag that is not a valid BCP 47 language tag; the message names it."""

    def __init__(self, value: str) -> None:
        super().__init__(f"unknown language tag {value!r} (expected BCP 47, e.g. 'de', 'pt-BR')")
        self.value = value


def canonical(value: str) -> str:
    """The tag in canonical form ("" stays ""); raises UnknownLanguage naming the value."""
    raw = value.strip().replace("_", "-")
    if not raw:
        return ""
    if len(raw) > LONGEST_TAG or not langcodes.tag_is_valid(raw):
        raise UnknownLanguage(value)
    try:
        tag = str(langcodes.standardize_tag(raw))
    except ValueError:
        raise UnknownLanguage(value) from None
    if not langcodes.tag_is_valid(tag) or len(tag) > LONGEST_TAG:
        raise UnknownLanguage(value)
    return tag


def base_of(tag: str) -> str:
    """The base language of a tag: "pt-BR" → "pt", "zh-Hant" → "zh", "de" → "de"."""
    return tag.split("-", 1)[0]


def validate_language(value: str) -> None:
    """A model field's validator: a canonical, valid tag (or "" where blank is allowed)."""
    try:
        tag = canonical(value)
    except UnknownLanguage as exc:
        raise ValidationError(str(exc)) from None
    if tag != value:
        raise ValidationError(f"write the language tag as {tag!r}, not {value!r}")


def default_language() -> str:
    """BULLETIN_DEFAULT_LANGUAGE: what a person without a language of their own reads."""
    from bulletin.conf import options

    return options().default_language


def offered_languages() -> tuple[str, ...]:
    """BULLETIN_LANGUAGES: the languages HR may write in, the default first."""
    from bulletin.conf import options

    return options().language_list()


def display_name(tag: str) -> str:
    """The language's English name ("pt-BR" → "Portuguese (Brazil)"), for HR's screens."""
    # Babel's CLDR data names languages (langcodes would need another package for it).
    from babel import Locale, UnknownLocaleError

    if not tag:
        return ""
    try:
        return Locale.parse(tag, sep="-").get_display_name("en") or tag
    except (UnknownLocaleError, ValueError):
        return tag
