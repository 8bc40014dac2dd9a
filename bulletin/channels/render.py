"""The body for email and webhooks: sanitised HTML, readable prose, and escaped Markdown.

Each renders the one parsed tree (:mod:`bulletin.channels.document`); the personal fields are
filled in afterwards in each form's literal way, so a recipient's name can neither inject
markup nor be mangled by Markdown syntax.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

import nh3
from markdown_it.renderer import RendererHTML
from markdown_it.tree import SyntaxTreeNode

from bulletin.channels.base import Recipient
from bulletin.channels.document import (
    FIELDS,
    fill,
    link_target,
    markdown_parser,
    parse,
    placeholders,
    plain,
    protect,
    values_for,
)

_SCHEMES = {"http", "https", "mailto"}
# CommonMark lets a backslash escape any ASCII punctuation character.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&])")


class _SafeLinks(RendererHTML):
    """markdown-it's HTML renderer; a link the parser stripped of its target renders as its
    label alone (the core rule in ``document`` removed the unsafe ``href``)."""

    def link_open(self, tokens, idx, options, env):  # type: ignore[no-untyped-def]
        if tokens[idx].attrGet("href") is None:
            return ""
        return self.renderToken(tokens, idx, options, env)

    def link_close(self, tokens, idx, options, env):  # type: ignore[no-untyped-def]
        opened = _opening(tokens, idx)
        if opened is not None and opened.attrGet("href") is None:
            return ""
        return self.renderToken(tokens, idx, options, env)


def _opening(tokens, idx):  # type: ignore[no-untyped-def]
    """The link_open a link_close closes (links do not nest)."""
    for token in reversed(tokens[:idx]):
        if token.type == "link_open":
            return token
    return None


@lru_cache(maxsize=256)
def _html(body: str) -> str:
    document = parse(body)
    rendered = _SafeLinks().render(document.tokens, markdown_parser().options, {})
    return nh3.clean(rendered, link_rel="noopener noreferrer", url_schemes=_SCHEMES)


def markdown_to_html(body: str) -> str:
    """Safe HTML for HR's own screens, the placeholders shown as typed."""
    return placeholders(_html(body))


def render_html(body: str, recipient: Recipient | None) -> str:
    return fill(_html(body), values_for(recipient), html.escape)


@lru_cache(maxsize=256)
def _prose(body: str) -> str:
    return _block(parse(body).tree).strip()


def render_parts(body: str, recipient: Recipient | None) -> tuple[str, str]:
    """(text, html): both of an email's parts, the person's values worked out once."""
    values = values_for(recipient)
    return fill(_prose(body), values), fill(_html(body), values, html.escape)


def render_text(body: str, recipient: Recipient | None) -> str:
    """The body as readable plain text (the email's text part): no Markdown marks, links as
    ``label (url)``, lists as lists."""
    return fill(_prose(body), values_for(recipient))


def escape_markdown(value: str) -> str:
    return _MARKDOWN_SPECIAL.sub(r"\\\1", value)


def render_markdown(body: str, recipient: Recipient | None) -> str:
    """The Markdown source with the personal fields filled in as escaped, literal text (for
    receivers that render Markdown themselves: webhooks)."""
    return fill(_protected(body), values_for(recipient), escape_markdown)


@lru_cache(maxsize=256)
def _protected(body: str) -> str:
    return protect(body)


# --- prose ---------------------------------------------------------------------------------


def _inline(node: SyntaxTreeNode) -> str:
    if node.type in ("link", "image"):
        label = plain(node).strip()
        url = link_target(node)
        if url is None or label == url or label == url.removeprefix("mailto:"):
            return label or (url or "")
        return f"{label} ({url})" if label else url
    if node.type == "softbreak":
        return "\n"
    if node.children:
        return "".join(_inline(child) for child in node.children)
    return plain(node)


def _indent(text: str, first: str, rest: str) -> str:
    lines = text.split("\n")
    return "\n".join([first + lines[0], *(rest + line if line else line for line in lines[1:])])


def _list(node: SyntaxTreeNode) -> str:
    start = int(str(node.attrs.get("start", 1))) if node.type == "ordered_list" else 0
    items = []
    for number, item in enumerate(node.children, start):
        marker = f"{number}. " if node.type == "ordered_list" else "- "
        content = "\n".join(_block(child) for child in item.children)
        items.append(_indent(content, marker, " " * len(marker)))
    return "\n".join(items)


def _block(node: SyntaxTreeNode) -> str:
    kind = node.type
    if kind == "inline":
        return _inline(node)
    if kind in ("bullet_list", "ordered_list"):
        return _list(node)
    if kind in ("fence", "code_block"):
        return _indent(node.content.rstrip("\n"), "    ", "    ")
    if kind == "hr":
        return "----"
    if kind == "blockquote":
        quoted = "\n\n".join(_block(child) for child in node.children)
        return "\n".join(f"> {line}".rstrip() for line in quoted.split("\n"))
    if kind == "tr":
        return " | ".join(_block(cell) for cell in node.children)
    separator = "\n\n" if kind == "root" else "\n"
    return separator.join(_block(child) for child in node.children)


__all__ = ["FIELDS", "markdown_to_html", "render_html", "render_markdown", "render_text"]
