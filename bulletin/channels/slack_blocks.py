"""An announcement as a Slack message: a header block, then the body as ``rich_text`` blocks.

Why ``rich_text`` and not ``mrkdwn`` sections: mrkdwn has no escape for its formatting marks
(``*``, ``_``, ``~``, a backtick) and reads ``<!channel>``, ``<@U…>`` and ``<url|label>`` inside
any text, so a name like ``Mallory *Star*`` would turn bold and a link target like ``!channel``
would ping the workspace. In a ``rich_text`` block every run of text is literal and every
style, link or mention is its own element; Bulletin writes only ``text`` and ``link`` elements,
so no mention, broadcast or date can appear. Slack's own reference: "While it is possible to
format text with mrkdwn, rich_text is strongly preferred"
(docs.slack.dev/reference/block-kit/blocks/rich-text-block).

Slack's limits (docs.slack.dev/reference/block-kit/blocks; chat.postMessage):

- at most 50 blocks a message; a header's text at most 150 characters; a section's text at
  most 3,000 — ``rich_text`` has no documented per-block figure, so each block is kept to
  the section's 3,000 as well;
- an undocumented total: Slack refuses a message whose blocks hold too much text with
  ``msg_blocks_too_long``. Slack's engineers speak of "12,000 text characters with a buffer for
  block containers" and users were refused at 11,341, so a message carries at most
  ``TOTAL_CHARS`` (10,000) characters of text and link targets;
- the ``text`` fallback (notifications, screen readers) is escaped (``&``, ``<``, ``>``: the
  three characters Slack's formatting docs ask to escape) and kept to 3,000 characters.

Content is cut only between elements — paragraphs, list items, quotes, code blocks — or at a
space inside plain text, never inside a link, an inline code span or a code block. What does
not fit is replaced by a link, "Read the whole announcement", to its web page: length alone
never fails a delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext, gettext_noop
from markdown_it.tree import SyntaxTreeNode

from bulletin.channels.base import Message, PermanentError
from bulletin.channels.document import fill_structure, link_target, parse, values_for
from bulletin.channels.locale_text import speaking
from bulletin.channels.render import render_text

HEADER_LIMIT = 150
MAX_BLOCKS = 50
BLOCK_CHARS = 3000
TOTAL_CHARS = 10_000
FALLBACK_LIMIT = 3000
# In English here (HR's preview says it so); each message says it in its reader's language.
READ_MORE = gettext_noop("Read the whole announcement")
READ_MORE_IN_BULLETIN = gettext_noop("Read the whole announcement in Bulletin.")

Element = dict[str, Any]
_STYLES = {"strong": "bold", "em": "italic", "s": "strike"}
_DIVIDER: Element = {"type": "divider"}


def escape(text: str) -> str:
    """Slack's three control characters as the entities its formatting docs ask for."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- the tree as rich text elements ----------------------------------------------------------


def _text(text: str, style: dict[str, bool]) -> Element:
    element: Element = {"type": "text", "text": text}
    return {**element, "style": dict(style)} if style else element


def _inline(node: SyntaxTreeNode, style: dict[str, bool]) -> list[Element]:
    out: list[Element] = []
    for child in node.children:
        kind = child.type
        if kind in _STYLES:
            out += _inline(child, {**style, _STYLES[kind]: True})
        elif kind in ("link", "image"):
            out += _link(child, style)
        elif kind == "code_inline":
            out.append(_text(child.content, {**style, "code": True}))
        elif kind in ("softbreak", "hardbreak"):
            out.append(_text(" " if kind == "softbreak" else "\n", style))
        elif child.children:
            out += _inline(child, style)
        else:
            out.append(_text(child.content, style))
    return out


def _link(node: SyntaxTreeNode, style: dict[str, bool]) -> list[Element]:
    label = _inline(node, style) if node.children else [_text(node.content, style)]
    url = link_target(node)
    if url is None:
        return label
    runs = [element for element in label if element.get("text")] or [_text(url, style)]
    return [{**element, "type": "link", "url": url} for element in runs]


def _merged(elements: list[Element]) -> list[Element]:
    """Neighbouring runs of the same kind and style as one; empty runs dropped."""
    out: list[Element] = []
    for element in elements:
        if not element.get("text"):
            continue
        last = out[-1] if out else None
        if last and {**last, "text": ""} == {**element, "text": ""}:
            out[-1] = {**last, "text": last["text"] + element["text"]}
        else:
            out.append(element)
    return out


def _section(elements: list[Element]) -> Element:
    return {"type": "rich_text_section", "elements": _merged(elements)}


def _items(node: SyntaxTreeNode, indent: int) -> list[Element]:
    """A list as rich_text_list elements: nested lists follow at a deeper indent."""
    style = "ordered" if node.type == "ordered_list" else "bullet"
    start = int(str(node.attrs.get("start", 1))) if style == "ordered" else 1
    out: list[Element] = []
    run: list[Element] = []
    for item in node.children:
        parts: list[Element] = []
        nested: list[Element] = []
        for child in item.children:
            if child.type in ("bullet_list", "ordered_list"):
                nested += _items(child, min(indent + 1, 6))
            else:
                parts += [_text("\n", {})] if parts else []
                parts += _flat(child)
        run.append(_section(parts))
        if nested:
            out.append(_list(style, indent, start, run))
            start, run = start + len(run), []
            out += nested
    return [*out, _list(style, indent, start, run)] if run else out


def _list(style: str, indent: int, start: int, items: list[Element]) -> Element:
    element: Element = {"type": "rich_text_list", "style": style, "indent": indent}
    if style == "ordered" and start != 1:
        element["offset"] = start - 1
    return {**element, "elements": items}


def _flat(node: SyntaxTreeNode) -> list[Element]:
    """Any block's content as inline runs (inside a list item or a quote)."""
    if node.type == "inline":
        return _inline(node, {})
    if node.type in ("fence", "code_block"):
        return [_text(node.content.rstrip("\n"), {"code": True})]
    out: list[Element] = []
    for child in node.children:
        out += ([_text("\n", {})] if out else []) + _flat(child)
    return out


def _table(node: SyntaxTreeNode) -> list[Element]:
    rows: list[Element] = []
    for part in node.children:
        for row in part.children:
            cells: list[Element] = []
            for cell in row.children:
                cells += [_text(" | ", {})] if cells else []
                cells += _inline(cell.children[0], {"bold": True} if part.type == "thead" else {})
            rows.append(_section(cells))
    return rows


def _element(node: SyntaxTreeNode) -> list[Element]:
    kind = node.type
    if kind == "paragraph":
        return [_section(_flat(node))]
    if kind == "heading":
        return [_section(_inline(node.children[0], {"bold": True}))]
    if kind in ("bullet_list", "ordered_list"):
        return _items(node, 0)
    if kind in ("fence", "code_block"):
        code = node.content.rstrip("\n")
        return [{"type": "rich_text_preformatted", "elements": [_text(code, {})]}] if code else []
    if kind == "blockquote":
        return [{"type": "rich_text_quote", "elements": _merged(_flat(node))}]
    if kind == "table":
        return _table(node)
    if kind == "hr":
        return [_DIVIDER]
    return []


def elements(body: str) -> list[Element]:
    """The body's top-level rich text elements (and dividers), placeholders unfilled. A
    paragraph or heading ends with a line break, so the next one starts after a blank line."""
    out: list[Element] = []
    for node in parse(body).tree.children:
        made = [element for element in _element(node) if element.get("elements") != []]
        if node.type in ("paragraph", "heading") and made:
            made[-1] = _section([*made[-1]["elements"], _text("\n", {})])
        out += made
    if out and out[-1]["type"] == "rich_text_section":
        *runs, last = out[-1]["elements"]
        out[-1] = _section([*runs, {**last, "text": last["text"].rstrip("\n")}])
    return out


# --- fitting the elements into Slack's limits -------------------------------------------------


def size(element: Element) -> int:
    """The characters of text and link targets an element carries."""
    if "elements" in element:
        return sum(size(child) for child in element["elements"])
    return len(element.get("text", "")) + len(element.get("url", ""))


def _cut_at(text: str, room: int) -> int:
    """Where plain text may be cut to fit ``room``: a line or word break in its second half,
    else (text without spaces: Japanese, Chinese) at ``room`` itself."""
    at = max(text.rfind("\n", 0, room), text.rfind(" ", 0, room))
    return at if at > room // 2 else room


def _split_runs(runs: list[Element], room: int) -> tuple[list[Element], list[Element]] | None:
    """Runs cut after at most ``room`` characters: between runs, or inside a plain text run;
    never inside a link or a code span."""
    used = 0
    for number, run in enumerate(runs):
        if used + size(run) <= room:
            used += size(run)
            continue
        head, tail = runs[:number], runs[number:]
        if run["type"] == "text" and not run.get("style", {}).get("code") and room - used > 1:
            at = _cut_at(run["text"], room - used)
            first, rest = run["text"][:at].rstrip(), run["text"][at:].lstrip()
            if first and rest:
                head, tail = [*head, {**run, "text": first}], [{**run, "text": rest}, *tail[1:]]
        return (head, tail) if head else None
    return None


def _split(element: Element, room: int) -> tuple[Element, Element] | None:
    """The element as a head that fits ``room`` and the rest; None when it cannot be cut so
    (a code block; a single link, code span or list item)."""
    kind = element["type"]
    if kind not in ("rich_text_section", "rich_text_quote", "rich_text_list"):
        return None
    if kind == "rich_text_list":
        return _split_list(element, room)
    pieces = _split_runs(element["elements"], room)
    if pieces is None:
        return None
    return {**element, "elements": pieces[0]}, {**element, "elements": pieces[1]}


def _split_list(element: Element, room: int) -> tuple[Element, Element] | None:
    items, used, count = element["elements"], 0, 0
    while count < len(items) and used + size(items[count]) <= room:
        used, count = used + size(items[count]), count + 1
    if count == 0:
        return None
    rest = {**element, "elements": items[count:]}
    if element["style"] == "ordered":
        rest["offset"] = element.get("offset", 0) + count
    return {**element, "elements": items[:count]}, rest


class _Packer:
    """Fills rich_text blocks of at most ``BLOCK_CHARS`` each, within a total and a number of
    blocks, in the body's order; stops (``cut``) at the first thing that does not fit."""

    def __init__(self, total: int, most_blocks: int) -> None:
        self.left, self.most = total, most_blocks
        self.blocks: list[Element] = []
        self.current: list[Element] = []
        self.used = 0
        self.cut = False

    def close(self) -> bool:
        """Close the block being filled; False when no block is left for it."""
        if not self.current:
            return True
        if len(self.blocks) >= self.most:
            return False
        self.blocks.append({"type": "rich_text", "elements": self.current})
        self.current, self.used = [], 0
        return True

    def take(self, element: Element) -> None:
        self.current.append(element)
        self.used += size(element)
        self.left -= size(element)

    def pack(self, parts: list[Element]) -> list[Element]:
        queue = list(reversed(parts))
        while queue and not self.cut:
            part = queue.pop()
            if part["type"] == "divider":
                self.cut = not self.close() or len(self.blocks) >= self.most
                self.blocks += [] if self.cut else [part]
            else:
                queue += self._place(part)
        self.cut = not self.close() or self.cut
        return self.blocks

    def _place(self, part: Element) -> list[Element]:
        """Place what fits of ``part``; returns what is left to place (nothing, or the rest)."""
        room = min(BLOCK_CHARS - self.used, self.left)
        if size(part) <= room:
            self.take(part)
            return []
        if self.current and size(part) <= min(BLOCK_CHARS, self.left):
            self.cut = not self.close()
            return [part]
        if (pieces := _split(part, room)) is not None:
            self.take(pieces[0])
            self.cut = not self.close()
            return [pieces[1]]
        if self.current:  # a fresh block has more room to split in
            self.cut = not self.close()
            return [part]
        if size(part) <= self.left:  # a long code block: a block of its own
            self.take(part)
            self.cut = not self.close()
            return []
        self.cut = True
        return []


@dataclass(frozen=True)
class SlackMessage:
    """What chat.postMessage is given, and whether (and how much of) the body was cut."""

    blocks: list[Element]
    text: str
    cut: bool
    body_chars: int
    shown_chars: int


def _read_more(url: str, language: str) -> Element:
    with speaking(language):
        if not url:
            run = _text(gettext(READ_MORE_IN_BULLETIN), {"italic": True})
        else:
            run = {"type": "link", "url": url, "text": gettext(READ_MORE), "style": {"bold": True}}
    return {"type": "rich_text", "elements": [_section([run])]}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def slack_message(message: Message) -> SlackMessage:
    """The announcement for Slack, personalised for the message's recipient (a place:
    "everyone"), within every limit above."""
    recipient, body = message.recipient, message.body
    parts = fill_structure(elements(body), values_for(recipient))
    whole_title = " ".join(message.title.split())
    title = _clip(whole_title, HEADER_LIMIT)
    header = [{"type": "header", "text": {"type": "plain_text", "text": title, "emoji": True}}]
    header = header if title else []
    more = _read_more(message.web_url, getattr(message, "language", ""))
    packer = _Packer(TOTAL_CHARS - len(title) - size(more), MAX_BLOCKS - len(header) - 1)
    blocks = [*header, *packer.pack(parts)]
    if packer.cut:
        blocks.append(more)
    if not blocks:
        raise PermanentError("slack: the message has neither a title nor a body")
    fallback = "\n\n".join(part for part in (whole_title, render_text(body, recipient)) if part)
    whole = sum(size(part) for part in parts)
    shown = sum(size(block) for block in blocks[len(header) :]) - (size(more) if packer.cut else 0)
    return SlackMessage(blocks, escape(_clip(fallback, FALLBACK_LIMIT)), packer.cut, whole, shown)


def _as_text(element: Element) -> str:
    """An element as the text it shows (HR's preview of where Slack cuts)."""
    kind = element["type"]
    if kind == "rich_text_list":
        items = [_as_text(item) for item in element["elements"]]
        first = element.get("offset", 0) + 1
        ordered = element["style"] == "ordered"
        marks = [f"{first + n}." if ordered else "•" for n in range(len(items))]
        pad = "    " * element.get("indent", 0)
        return "\n".join(f"{pad}{mark} {item}" for mark, item in zip(marks, items, strict=False))
    if kind == "divider":
        return "──────────"
    if "elements" in element:
        joiner = "\n" if kind == "rich_text" else ""
        text = joiner.join(_as_text(child) for child in element["elements"])
        return "\n".join(f"> {line}" for line in text.split("\n")) if "quote" in kind else text
    return element.get("text", "")


def preview_text(laid: SlackMessage) -> str:
    """The message as plain text, as far as Slack shows it, and a line where it is cut."""
    shown = "\n".join(_as_text(block) for block in laid.blocks if block["type"] != "header")
    if laid.cut:
        shown = shown.rsplit("\n", 1)[0]  # the link to the rest is said below instead
        shown += f"\n\n✂ Slack stops here; “{READ_MORE}” links to the rest."
    return shown.strip()
