"""One Markdown pipeline: an announcement body is parsed once, and every channel renders the
same tree (HTML and prose for email, Block Kit ``rich_text`` for Slack, an Adaptive Card for
Teams, escaped Markdown for webhooks).

Two rules make every renderer safe by construction:

- **Personal fields are literal.** ``{{ name }}``, ``{{ first_name }}`` and ``{{ email }}`` are
  swapped for private-use characters *before* parsing, so a name can never become Markdown
  syntax; each renderer puts the value back afterwards in its own literal form (HTML-escaped,
  a plain Slack or Teams text run, a backslash-escaped Markdown string).
- **Links go only to http, https and mailto.** Any other target (``!channel``, ``@U…``,
  ``javascript:``, a relative path) keeps its label as plain text and loses the link.

The parser is markdown-it's "js-default" (raw HTML off) with tables and strikethrough.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode

from bulletin.channels.base import Recipient

FIELDS = ("name", "first_name", "email")
# One private-use character per field: markdown-it treats it as an ordinary letter, so it can
# neither start nor end any syntax, and no body keeps one (they are removed before parsing).
SENTINELS = {field: chr(0xE000 + number) for number, field in enumerate(FIELDS)}
_PLACEHOLDER = re.compile(r"\{\{\s*(name|first_name|email)\s*\}\}")
_PRIVATE = re.compile("[\ue000-\ue002]")
_FILLED = re.compile("[\ue000-\ue002]|%EE%80%8[0-2]")
_DECODED = {quote(sentinel.encode("utf-8")): sentinel for sentinel in SENTINELS.values()}
_FIELD_OF = {sentinel: field for field, sentinel in SENTINELS.items()}
_LINK_SCHEMES = ("http://", "https://", "mailto:")
# A post to a place (a Slack or Teams channel) has no one person to name.
EVERYONE = {"name": "everyone", "first_name": "everyone", "email": ""}


def safe_url(url: str | None) -> str | None:
    """The link target when it is http, https or mailto; None for anything else."""
    if not url or not url.strip().lower().startswith(_LINK_SCHEMES):
        return None
    return url.strip()


def _drop_unsafe_links(state: StateCore) -> None:
    """A core rule: a link whose target is not http, https or mailto becomes its label (its
    open and close tokens lose their meaning); such an image becomes its alt text."""
    for block in state.tokens:
        for token in block.children or []:
            if token.type == "link_open" and safe_url(str(token.attrGet("href") or "")) is None:
                token.attrs.pop("href", None)
            elif token.type == "image" and safe_url(str(token.attrGet("src") or "")) is None:
                token.type, token.tag, token.content = "text", "", token.content
                token.children, token.attrs = None, {}


@lru_cache(maxsize=1)
def markdown_parser() -> MarkdownIt:
    parser = MarkdownIt("js-default").enable("table").enable("strikethrough")
    parser.core.ruler.push("bulletin_links", _drop_unsafe_links)
    return parser


@dataclass(frozen=True)
class Document:
    """A parsed body: markdown-it's tokens (the HTML renderer reads them) and their tree."""

    tokens: list[Token]
    tree: SyntaxTreeNode

    @property
    def empty(self) -> bool:
        return not self.tree.children


def protect(body: str) -> str:
    """The body with its placeholders as sentinel characters."""
    return _PLACEHOLDER.sub(lambda match: SENTINELS[match.group(1)], _PRIVATE.sub("", body))


@lru_cache(maxsize=256)
def parse(body: str) -> Document:
    """The body, parsed once (cached: one announcement goes to many people)."""
    tokens = markdown_parser().parse(protect(body))
    return Document(tokens, SyntaxTreeNode(tokens))


def values_for(recipient: Recipient | None) -> dict[str, str]:
    """What each placeholder says for this recipient (a place: "everyone")."""
    if recipient is None:
        return EVERYONE
    return {field: str(getattr(recipient, field)) for field in FIELDS}


def fill(text: str, values: dict[str, str], escape: Callable[[str], str] = str) -> str:
    """Put the personal fields back, each through ``escape``; in a link target (where
    markdown-it wrote the sentinel as percent escapes) percent-encoded instead. One pass, so a
    value is never searched again (a name holding a sentinel character stays as it is)."""
    if not _FILLED.search(text):
        return text

    def value(match: re.Match[str]) -> str:
        found = match.group(0)
        field = _FIELD_OF[found[-1] if len(found) == 1 else _DECODED[found]]
        return escape(values[field]) if len(found) == 1 else quote(values[field], safe="@")

    return _FILLED.sub(value, text)


def fill_structure(value: Any, values: dict[str, str]) -> Any:
    """A JSON-like structure (Slack blocks, a Teams card) with the fields put back as
    literal text."""
    if isinstance(value, str):
        return fill(value, values)
    if isinstance(value, list):
        return [fill_structure(item, values) for item in value]
    if isinstance(value, dict):
        return {key: fill_structure(item, values) for key, item in value.items()}
    return value


def placeholders(text: str) -> str:
    """The sentinels shown as the placeholders HR typed (for HR's own screens)."""
    return fill(text, {field: f"{{{{ {field} }}}}" for field in FIELDS})


def link_target(node: SyntaxTreeNode) -> str | None:
    """A link or image node's safe target."""
    return safe_url(str(node.attrs.get("href") or node.attrs.get("src") or ""))


def plain(node: SyntaxTreeNode) -> str:
    """A node's text without any formatting (an image: its alt text)."""
    if node.type in ("text", "code_inline", "fence", "code_block"):
        return node.content
    if node.type == "softbreak":
        return " "
    if node.type == "hardbreak":
        return "\n"
    if node.type == "image":
        return "".join(plain(child) for child in node.children) or node.content
    return "".join(plain(child) for child in node.children)
