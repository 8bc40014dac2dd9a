"""An announcement as a Microsoft Teams Adaptive Card: ``RichTextBlock``s of ``TextRun``s.

Why not ``TextBlock``: a TextBlock's text is Markdown (``**bold**``, ``[label](url)``, ``- ``
lists), so a name like ``Mallory *Star* [win](https://evil.example)`` would render bold and as a
link. Microsoft: "RichTextBlock does not support Markdown, but provides text configuration
directly in TextRun" (learn.microsoft.com/adaptive-cards/create/textfeatures). Every run here
is literal text with explicit styles; a link is a run whose ``selectAction`` is
``Action.OpenUrl`` to an http, https or mailto target. The one piece of syntax a run still reads
is the ``{{DATE(…)}}``/``{{TIME(…)}}`` function, so a ``{{`` in any text gets a zero-width space.

Teams' limit: a message near 28 KB ("Request Entity too large", learn.microsoft.com/connectors/
teams, Known issues). A Workflows webhook answers 202 before the flow posts the card, so a card
Teams would refuse fails where nobody sees it: the whole request is kept to ``PAYLOAD_LIMIT``
bytes (28,000, UTF-8 JSON as sent). Content is cut between blocks, or at a space inside plain
text, never inside a link or code; what does not fit is replaced by a "Read the whole
announcement" button (``Action.OpenUrl``) to the announcement's page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext, gettext_noop
from markdown_it.tree import SyntaxTreeNode

from bulletin.channels.base import Message
from bulletin.channels.document import fill_structure, link_target, parse, values_for
from bulletin.channels.locale_text import direction, speaking

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.4"
PAYLOAD_LIMIT = 28_000
# In English here; each card says it in its readers' language (the message's).
READ_MORE = gettext_noop("Read the whole announcement")
READ_MORE_IN_BULLETIN = gettext_noop("Read the whole announcement in Bulletin.")

Run = dict[str, Any]
Block = dict[str, Any]
_STYLES: dict[str, Run] = {
    "strong": {"weight": "Bolder"},
    "em": {"italic": True},
    "s": {"strikethrough": True},
}


def _run(text: str, style: Run) -> Run:
    return {"type": "TextRun", "text": text, **style}


def _runs(node: SyntaxTreeNode, style: Run) -> list[Run]:
    out: list[Run] = []
    for child in node.children:
        kind = child.type
        if kind in _STYLES:
            out += _runs(child, {**style, **_STYLES[kind]})
        elif kind in ("link", "image"):
            out += _link(child, style)
        elif kind == "code_inline":
            out.append(_run(child.content, {**style, "fontType": "Monospace"}))
        elif kind in ("softbreak", "hardbreak"):
            out.append(_run(" " if kind == "softbreak" else "\n", style))
        elif child.children:
            out += _runs(child, style)
        else:
            out.append(_run(child.content, style))
    return [run for run in out if run["text"]]


def _link(node: SyntaxTreeNode, style: Run) -> list[Run]:
    label = _runs(node, style) if node.children else [_run(node.content, style)]
    url = link_target(node)
    if url is None:
        return label
    action = {"selectAction": {"type": "Action.OpenUrl", "url": url}, "underline": True}
    return [{**run, **action} for run in label or [_run(url, style)]]


def _block(runs: list[Run], **options: Any) -> Block:
    return {"type": "RichTextBlock", "inlines": runs, **options}


def _flat(node: SyntaxTreeNode, style: Run) -> list[Run]:
    if node.type == "inline":
        return _runs(node, style)
    if node.type in ("fence", "code_block"):
        return [_run(node.content.rstrip("\n"), {**style, "fontType": "Monospace"})]
    out: list[Run] = []
    for child in node.children:
        out += ([_run("\n", style)] if out else []) + _flat(child, style)
    return out


def _items(node: SyntaxTreeNode, depth: int) -> list[Block]:
    ordered = node.type == "ordered_list"
    number = int(str(node.attrs.get("start", 1))) if ordered else 0
    out: list[Block] = []
    for item in node.children:
        marker = f"{number}. " if ordered else ("• " if depth == 0 else "◦ ")
        number += 1
        runs = [_run("\u2003" * depth + marker, {})]
        nested: list[Block] = []
        for child in item.children:
            if child.type in ("bullet_list", "ordered_list"):
                nested += _items(child, depth + 1)
            else:
                runs += ([_run("\n", {})] if len(runs) > 1 else []) + _flat(child, {})
        out += [_block(runs, spacing="None" if out or depth else "Default"), *nested]
    return out


def _table(node: SyntaxTreeNode) -> list[Block]:
    rows: list[Block] = []
    for part in node.children:
        for row in part.children:
            runs: list[Run] = []
            style = {"weight": "Bolder"} if part.type == "thead" else {}
            for cell in row.children:
                runs += ([_run(" | ", {})] if runs else []) + _runs(cell.children[0], style)
            rows.append(_block(runs, spacing="None") if rows else _block(runs))
    return rows


def _blocks(node: SyntaxTreeNode) -> list[Block]:
    kind = node.type
    if kind == "paragraph":
        return [_block(_flat(node, {}))]
    if kind == "heading":
        size = {"size": "Medium"} if node.tag in ("h1", "h2") else {}
        return [_block(_runs(node.children[0], {"weight": "Bolder", **size}))]
    if kind in ("bullet_list", "ordered_list"):
        return _items(node, 0)
    if kind in ("fence", "code_block"):
        return [_block(_flat(node, {}))]
    if kind == "blockquote":
        return [_block(_flat(node, {"isSubtle": True, "italic": True}))]
    if kind == "table":
        return _table(node)
    return []


def card_blocks(body: str) -> list[Block]:
    """The body as card elements, placeholders unfilled; a thematic break becomes a separator
    line above the next block."""
    out: list[Block] = []
    separator = False
    for node in parse(body).tree.children:
        if node.type == "hr":
            separator = True
            continue
        made = [block for block in _blocks(node) if block["inlines"]]
        if made and separator:
            made[0] = {**made[0], "separator": True}
            separator = False
        out += made
    return out


# --- fitting the card into Teams' limit -------------------------------------------------------


def _bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _splittable(run: Run) -> bool:
    return "selectAction" not in run and run.get("fontType") != "Monospace"


def _split_runs(runs: list[Run], room: int) -> tuple[list[Run], list[Run]] | None:
    """Runs cut after at most ``room`` characters of text: between runs or at a space inside
    plain text (anything but a link or code)."""
    used = 0
    for number, run in enumerate(runs):
        if used + len(run["text"]) <= room:
            used += len(run["text"])
            continue
        head, tail, text = runs[:number], runs[number:], run["text"]
        if _splittable(run) and room - used > 1:
            at = max(text.rfind(" ", 0, room - used), text.rfind("\n", 0, room - used))
            at = at if at > (room - used) // 2 else room - used
            if text[:at].strip() and text[at:].strip():
                head = [*head, {**run, "text": text[:at].rstrip()}]
                tail = [{**run, "text": text[at:].lstrip()}, *tail[1:]]
        return (head, tail) if head else None
    return None


def _split(block: Block, room_bytes: int) -> tuple[Block, Block] | None:
    """The block as a head of at most ``room_bytes`` bytes and the rest, or None."""
    room = room_bytes
    for _ in range(8):  # the byte size of a head is found by measuring, not by guessing
        pieces = _split_runs(block["inlines"], room)
        if pieces is None:
            return None
        head = {**block, "inlines": pieces[0]}
        if (size := _bytes(head)) <= room_bytes:
            rest = {key: value for key, value in block.items() if key != "separator"}
            return head, {**rest, "inlines": pieces[1], "spacing": "None"}
        room = max(room * room_bytes // size - 1, 0)
    return None


def _fit(blocks: list[Block], room: int) -> tuple[list[Block], bool]:
    """As many blocks as fit in ``room`` bytes (each costs its JSON and a comma); the one that
    does not fit is cut where it may be. Returns them and whether anything was left out."""
    kept: list[Block] = []
    for block in blocks:
        cost = _bytes(block) + 1
        if cost <= room:
            kept.append(block)
            room -= cost
            continue
        if (pieces := _split(block, room - 1)) is not None:
            kept.append(pieces[0])
        return kept, True
    return kept, False


@dataclass(frozen=True)
class TeamsCard:
    """The request body for a Workflows webhook, and whether the body was cut to fit."""

    payload: dict[str, Any]
    cut: bool
    size: int
    body_chars: int = 0
    shown_chars: int = 0


def _payload(card: dict[str, Any]) -> dict[str, Any]:
    attachment = {"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}
    return {"type": "message", "attachments": [attachment]}


def _read_more(url: str, language: str) -> dict[str, Any]:
    with speaking(language):
        if not url:
            return {"body": [_block([_run(gettext(READ_MORE_IN_BULLETIN), {"italic": True})])]}
        return {"actions": [{"type": "Action.OpenUrl", "title": gettext(READ_MORE), "url": url}]}


def teams_card(message: Message) -> TeamsCard:
    """The announcement as a card for the message's place, within ``PAYLOAD_LIMIT``."""
    values = values_for(message.recipient)
    title = " ".join(message.title.split())
    heading = [_block([_run(title, {"weight": "Bolder", "size": "Medium"})])] if title else []
    body = _defused(fill_structure([*heading, *card_blocks(message.body)], values))
    card: dict[str, Any] = {"$schema": CARD_SCHEMA, "type": "AdaptiveCard"}
    card["version"] = CARD_VERSION
    language = getattr(message, "language", "")
    if direction(language) == "rtl":
        # AdaptiveCard's "rtl" (schema 1.5: "true if the content of this Adaptive Card should
        # be presented right to left", learn.microsoft.com/adaptive-cards/schema-explorer/
        # adaptive-card); a host on an older schema ignores a property it does not know.
        card["rtl"] = True
    more = _read_more(message.web_url, language)
    # The room left once the card holds the link to the rest (kept back, cut or not).
    room = PAYLOAD_LIMIT - _bytes(_payload({**card, "body": [], **more}))
    kept, cut = _fit(body, room + (0 if "body" in more else 1))  # the first needs no comma
    card["body"] = [*kept, *more.get("body", [])] if cut else kept
    if cut and "actions" in more:
        card["actions"] = more["actions"]
    payload = _payload(card)
    return TeamsCard(payload, cut, _bytes(payload), _chars(body), _chars(kept))


def _defused(blocks: list[Block]) -> list[Block]:
    """Every run's ``{{`` broken by a zero-width space: a card would read ``{{DATE(…)}}`` as a
    function, from the body or from someone's name alike."""
    return [{**block, "inlines": [_defuse(run) for run in block["inlines"]]} for block in blocks]


def _defuse(run: Run) -> Run:
    return {**run, "text": run["text"].replace("{{", "{\u200b{")} if "{{" in run["text"] else run


def _chars(blocks: list[Block]) -> int:
    return sum(len(run["text"]) for block in blocks for run in block.get("inlines", []))
