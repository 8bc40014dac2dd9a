"""An announcement's languages over the API: its default ``language`` and its
``translations`` in (create, edit) and out, each translation written through the service
(bulletin.dispatch.translations) so versions, audit and approval apply as on the HR screens.

A bad translation is a 422 naming ``translations`` and the item's index; nothing is written
(the request is one transaction).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from bulletin.dispatch import translations
from bulletin.domain.languages import UnknownLanguage, canonical
from bulletin.domain.models import Announcement
from bulletin.interfaces.api.errors import Problems, problem


def language_of(value: str | None) -> str | None:
    """The default language a request gives, canonical; a 422 naming it if unknown."""
    if value is None:
        return None
    try:
        tag = canonical(value)
    except UnknownLanguage as exc:
        raise Problems([problem("language", str(exc))]) from None
    if not tag:
        raise Problems([problem("language", "choose a language, e.g. en")])
    return tag


def check(items: list[dict[str, Any]], default: str) -> list[dict[str, Any]]:
    """The items with canonical tags; a 422 listing every bad or repeated one by index."""
    problems, seen, checked = [], set(), []
    for index, item in enumerate(items):
        try:
            tag = canonical(item["language"])
        except UnknownLanguage as exc:
            problems.append(problem("translations", f"language: {exc}", index))
            continue
        if tag == default:
            message = f"'{tag}' is the announcement's own language: give it as title and body"
            problems.append(problem("translations", message, index))
        elif tag in seen:
            problems.append(problem("translations", f"'{tag}' is given twice", index))
        seen.add(tag)
        checked.append(item | {"language": tag})
    if problems:
        raise Problems(problems)
    return checked


def save(item: Announcement, items: list[dict[str, Any]], by: Any) -> None:
    """Write each translation (a new version where it changed); call inside a transaction."""
    for index, given in enumerate(check(items, item.language)):
        try:
            translations.save_text(
                item, given["language"], given["title"], given["body"], by,
                ask_again=bool(given.get("ask_again")),
            )  # fmt: skip
        except ValidationError as exc:
            raise Problems(_problems(exc, index)) from None


def remove(item: Announcement, languages: list[str], by: Any) -> None:
    for index, language in enumerate(languages):
        try:
            translations.remove_text(item, language, by)
        except ValidationError as exc:
            raise Problems(
                [problem("remove_translations", m, index) for m in exc.messages]
            ) from None


def _problems(exc: ValidationError, index: int) -> list[dict[str, Any]]:
    if not hasattr(exc, "error_dict"):
        return [problem("translations", message, index) for message in exc.messages]
    return [
        problem("translations", f"{name}: {message}", index)
        for name, messages in exc.message_dict.items()
        for message in messages
    ]


def out(item: Announcement) -> list[dict[str, Any]]:
    """Its translations (not the default language), by tag, each at its latest version."""
    approved = translations.approved_version_ids(item)
    found = translations.available(item)
    return [
        {
            "language": tag,
            "title": version.title,
            "body": version.body,
            "version": version.number,
            "approved": version.pk in approved,
        }
        for tag, version in sorted(found.items())
        if tag != item.language
    ]


def check_default_change(item: Announcement, language: str | None) -> None:
    """A new default language must not be one it has a translation in (two texts would
    claim it): remove that translation first."""
    if language is None or language == item.language:
        return
    if language in translations.available(item):
        message = f"it has a '{language}' translation: remove it before making it the default"
        raise Problems([problem("language", message)])
