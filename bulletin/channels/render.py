"""Markdown to the two forms every channel needs: sanitised HTML and plain text.

Personalisation placeholders are filled after rendering, escaped for HTML, so a recipient's
name can neither inject markup nor be mangled by Markdown syntax.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt

from bulletin.channels.base import Recipient

_PLACEHOLDER = re.compile(r"\{\{\s*(name|first_name|email)\s*\}\}")


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    # "js-default" keeps raw HTML out of the output before nh3 even sees it.
    return MarkdownIt("js-default").enable("table").enable("strikethrough")


@lru_cache(maxsize=256)
def markdown_to_html(body: str) -> str:
    """Safe HTML for a Markdown body: raw HTML disabled, then sanitised by nh3 (belt and braces)."""
    return nh3.clean(_markdown().render(body), link_rel="noopener noreferrer")


# A post to a place (a Slack or Teams channel) has no one person to name.
_EVERYONE = {"name": "everyone", "first_name": "everyone", "email": ""}


@lru_cache(maxsize=256)
def _pieces(template: str) -> list[str]:
    """The template cut at its placeholders: text, field name, text, …, text."""
    return _PLACEHOLDER.split(template)


def personalise(template: str, recipient: Recipient | None, *, escape: bool) -> str:
    pieces = _pieces(template)
    if len(pieces) == 1:
        return template
    filled = pieces.copy()  # the cached list is shared: fill in a copy
    for at in range(1, len(filled), 2):
        field = filled[at]
        raw = str(getattr(recipient, field)) if recipient else _EVERYONE[field]
        filled[at] = html.escape(raw) if escape else raw
    return "".join(filled)


def render_html(body: str, recipient: Recipient | None) -> str:
    return personalise(markdown_to_html(body), recipient, escape=True)


def render_text(body: str, recipient: Recipient | None) -> str:
    return personalise(body, recipient, escape=False)
