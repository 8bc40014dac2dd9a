"""The catalogs are complete: every string the code and the employees' templates mark for
translation is translated in every shipped language, none fuzzy, each translation keeping its
placeholders and markup, and each committed ``.mo`` is exactly what its ``.po`` compiles to
(with Babel, so no GNU gettext is needed to run the tests or the app from a fresh clone).

A template word outside ``{% translate %}`` would escape all of that, so the employees'
templates are also read for text left outside the tags.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel import Locale
from babel.messages.catalog import Catalog, Message
from babel.messages.plurals import get_plural

from tests import catalogs

LANGUAGES = catalogs.LANGUAGES
PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[sd]")
TAG = re.compile(r"</?([a-z]+)")


def forms(text: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return tuple(text) if isinstance(text, (list, tuple)) else (text,)


def problems(catalog: Catalog, wanted: set[catalogs.Key]) -> list[str]:
    """What is wrong with one catalog: missing, stale, untranslated or fuzzy entries."""
    have = {catalogs.key_of(message): message for message in catalog if message.id}
    found = [f"missing {key!r}" for key in sorted(wanted - have.keys(), key=str)]
    found += [f"not marked anywhere {key!r}" for key in sorted(have.keys() - wanted, key=str)]
    for key, message in have.items():
        if message.fuzzy:
            found.append(f"fuzzy {key!r}")
        if not all(forms(message.string)):
            found.append(f"untranslated {key!r}")
    return found


def placeholders(text: str) -> list[str]:
    return sorted(name or "%" for name in PLACEHOLDER.findall(text))


def mismatches(message: Message) -> list[str]:
    """Each form of the translation against the English: the same placeholders, the same
    markup (a lost ``%(url)s`` or ``<a href>`` breaks the page, not just the words)."""
    english = forms(message.id)
    out = []
    for form in forms(message.string):
        if placeholders(form) not in [placeholders(text) for text in english]:
            out.append(f"placeholders of {form!r} differ from {english!r}")
        if sorted(TAG.findall(form)) != sorted(TAG.findall(english[-1])):
            out.append(f"markup of {form!r} differs from {english!r}")
    return out


@pytest.fixture(scope="module")
def wanted() -> set[catalogs.Key]:
    return set(catalogs.marked())


def test_strings_are_marked_in_the_employees_templates_and_the_code(
    wanted: set[catalogs.Key],
) -> None:
    # Sanity of the extraction itself: a template string, a plural, a context, a Python one.
    assert (None, "Open in Bulletin") in wanted
    assert ("button", "Acknowledge") in wanted
    assert (None, ("<strong>%(unread)s</strong> unread",) * 2) in wanted
    assert (None, "Read the whole announcement") in wanted
    assert len(wanted) > 60


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_marked_string_is_translated_in_the_catalog(
    language: str, wanted: set[catalogs.Key]
) -> None:
    catalog = catalogs.catalog(language)
    assert not catalog.fuzzy
    assert problems(catalog, wanted) == []


def test_a_string_missing_from_a_catalog_or_left_fuzzy_is_reported(
    wanted: set[catalogs.Key],
) -> None:
    catalog = catalogs.catalog("de")
    catalog.delete("Open in Bulletin")
    catalog["Manage preferences"].flags.add("fuzzy")
    catalog["Inbox"].string = ""
    assert sorted(problems(catalog, wanted)) == [
        "fuzzy (None, 'Manage preferences')",
        "missing (None, 'Open in Bulletin')",
        "untranslated (None, 'Inbox')",
    ]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_translation_keeps_the_placeholders_and_markup_of_the_english(
    language: str,
) -> None:
    found = [
        problem
        for message in catalogs.catalog(language)
        if message.id
        for problem in mismatches(message)
    ]
    assert found == []


def test_a_translation_that_drops_a_placeholder_is_caught() -> None:
    broken = Message("Open in Bulletin: %(url)s", "In Bulletin öffnen")
    assert mismatches(broken) == [
        "placeholders of 'In Bulletin öffnen' differ from ('Open in Bulletin: %(url)s',)"
    ]


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_catalog_has_its_languages_own_plural_rule(language: str) -> None:
    catalog = catalogs.catalog(language)
    rule = get_plural(Locale.parse(language))
    assert catalog.num_plurals == rule.num_plurals
    for message in catalog:
        if message.id and message.pluralizable:
            assert len(forms(message.string)) == rule.num_plurals, message.id


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_committed_mo_is_exactly_what_its_po_compiles_to(language: str) -> None:
    committed = catalogs.po_path(language).with_suffix(".mo").read_bytes()
    assert committed == catalogs.compiled(language), (
        f"bulletin/locale/{language}: run `python -m tests.catalogs compile` and commit the .mo"
    )


# What may stand outside the translation tags: the product's name and marks without words.
ALLOWED = {"Bulletin", "|", "·", "--"}
_OUTSIDE = [
    re.compile(r"\{%\s*(blocktranslate|blocktrans)\b.*?\{%\s*end\1\s*%\}", re.S),
    re.compile(r"\{#.*?#\}", re.S),
    re.compile(r"\{%\s*comment\s*%\}.*?\{%\s*endcomment\s*%\}", re.S),
    re.compile(r"\{%.*?%\}", re.S),
    re.compile(r"\{\{.*?\}\}", re.S),
    re.compile(r"<(style|script)\b.*?</\1>", re.S),
    re.compile(r"<[^>]*>", re.S),
    re.compile(r"&[a-z]+;"),
]


_ATTRIBUTES = re.compile(r'\b(?:aria-label|alt|title|placeholder)="([^"]*)"')


def words_outside_tags(source: str) -> list[str]:
    """Words a reader would see that no translation tag holds: text, and the attributes
    read aloud or shown (``aria-label``, ``alt``, ``title``, ``placeholder``)."""
    for pattern in _OUTSIDE[:5]:  # the template's own constructs
        source = pattern.sub(" ", source)
    attributes = " ".join(_ATTRIBUTES.findall(source))
    for pattern in _OUTSIDE[5:]:  # then the markup
        source = pattern.sub(" ", source)
    words = f"{source} {attributes}".split()
    return [word for word in words if word not in ALLOWED and re.search(r"\w", word)]


def test_the_employees_templates_have_no_words_outside_the_translation_tags() -> None:
    left = {
        str(path.relative_to(catalogs.ROOT)): words
        for path in catalogs.employee_templates()
        if (words := words_outside_tags(path.read_text(encoding="utf-8")))
    }
    # Pages no employee's language reaches (before sign-in, or with no employee): English.
    english_only = {"locked_out.html", "not_linked.html", "sso_refused.html", "_access_help.html"}
    assert {Path(name).name for name in left} <= english_only, left


def test_a_word_left_outside_the_tags_is_found() -> None:
    source = '{% load i18n %}<p title="{{ x }}">{% translate "Inbox" %} unread</p>{# note #}'
    assert words_outside_tags(source) == ["unread"]
    assert words_outside_tags('<nav aria-label="Pages">{{ page }}</nav>') == ["Pages"]
