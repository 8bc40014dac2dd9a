"""Bulletin's gettext catalogs (bulletin/locale/<lang>/LC_MESSAGES/django.po and .mo): what the
code and the employees' templates mark for translation, and the compiled catalogs, made with
Babel alone (no GNU gettext needed on a CI machine or a laptop).

- ``python -m tests.catalogs missing``: every marked string a catalog lacks, per language;
- ``python -m tests.catalogs compile``: rewrite each ``.mo`` from its ``.po`` (commit both;
  tests/test_catalogs.py checks that each ``.mo`` is exactly what its ``.po`` compiles to).

Marked strings are found as Django's ``makemessages`` finds them: a template is turned into
Python-like code by Django's own ``templatize`` (``{% translate %}`` and
``{% blocktranslate %}`` become ``gettext``/``pgettext``/``ngettext`` calls with
``%(name)s`` placeholders), then read with Babel's Python extractor, as a ``.py`` file is.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "bulletin" / "locale"
LANGUAGES = ("en", "de", "fr", "es", "pt", "ja")
# The employees' templates: what a recipient sees. HR's screens stay English (not marked);
# the admin's overrides use Django's own catalogs.
TEMPLATES = ROOT / "bulletin" / "interfaces" / "templates" / "bulletin"
NOT_EMPLOYEES = ("hr",)
KEYWORDS = {
    **DEFAULT_KEYWORDS,
    "gettext_noop": None,
    "gettext_lazy": None,
    "ngettext_lazy": (1, 2),
    "pgettext_lazy": ((1, "c"), 2),
    "npgettext_lazy": ((1, "c"), 2, 3),
}

# (context or None, msgid or (singular, plural)) — a catalog's key, and where it was found.
Key = tuple[str | None, str | tuple[str, ...]]


def employee_templates() -> list[Path]:
    return sorted(
        path
        for path in TEMPLATES.rglob("*")
        if path.suffix in (".html", ".txt")
        and path.relative_to(TEMPLATES).parts[0] not in NOT_EMPLOYEES
    )


def _python_files() -> list[Path]:
    return sorted((ROOT / "bulletin").rglob("*.py"))


def _found(code: str) -> Iterator[Key]:
    for _line, message, _comments, context in extract(
        "python", io.BytesIO(code.encode("utf-8")), keywords=KEYWORDS
    ):
        yield context, message


def marked() -> dict[Key, str]:
    """Every string marked for translation, with the first file marking it."""
    from django.utils.translation.template import templatize

    found: dict[Key, str] = {}
    for path in employee_templates():
        code = templatize(path.read_text(encoding="utf-8"), origin=str(path))
        # Its filler keeps the template's indentation, which Python's tokenizer refuses.
        code = "\n".join(line.lstrip() for line in code.splitlines())
        for key in _found(code):
            found.setdefault(key, str(path.relative_to(ROOT)))
    for path in _python_files():
        for key in _found(path.read_text(encoding="utf-8")):
            found.setdefault(key, str(path.relative_to(ROOT)))
    return found


def po_path(language: str) -> Path:
    return LOCALE / language / "LC_MESSAGES" / "django.po"


def catalog(language: str) -> Catalog:
    with po_path(language).open("rb") as source:
        return read_po(source, locale=language)


def key_of(message: object) -> Key:
    msgid = message.id  # type: ignore[attr-defined]
    return message.context, tuple(msgid) if isinstance(msgid, (list, tuple)) else msgid  # type: ignore[attr-defined]


def compiled(language: str) -> bytes:
    """The ``.mo`` its ``.po`` compiles to (fuzzy entries left out, as msgfmt does)."""
    out = io.BytesIO()
    write_mo(out, catalog(language), use_fuzzy=False)
    return out.getvalue()


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "missing"
    if command == "compile":
        for language in LANGUAGES:
            po_path(language).with_suffix(".mo").write_bytes(compiled(language))
        return 0
    wanted = marked()
    problems = 0
    for language in LANGUAGES:
        have = {key_of(message) for message in catalog(language) if message.id}
        for key in sorted(set(wanted) - have, key=str):
            problems += 1
            sys.stdout.write(f"{language}: missing {key!r} ({wanted[key]})\n")
    return 1 if problems else 0


if __name__ == "__main__":
    import django

    django.setup()
    raise SystemExit(main(sys.argv))
