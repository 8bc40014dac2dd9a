"""Microsoft Teams: one Adaptive Card per announcement, posted to a channel's Workflows webhook.

The place's target is the URL of a Teams workflow built from the template "Post to a channel
when a webhook request is received" (trigger "When a Teams webhook request is received").
Office 365 connectors ("Incoming Webhook") are retired; Workflows accept Adaptive Cards only,
not the old MessageCard (learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/
how-to/connectors-using, "Known issues"). The request is the Bot Framework message shape the
template reads::

    {"type": "message",
     "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                      "contentUrl": null,
                      "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                                  "type": "AdaptiveCard", "version": "1.4",
                                  "body": [title TextBlock, body TextBlocks…]}}]}

Reading the answer:

- A workflow answers **202 Accepted** with an empty body: the run was queued (the Logic Apps
  request trigger's default answer when the flow has no Response action). That is success as
  far as anyone outside the flow can tell; a flow that fails later (an owner who left, a
  private channel) is visible only in its run history.
- The old connectors answered **HTTP 200 with an error in the body**, e.g. "Webhook message
  delivery failed with error: Microsoft Teams endpoint returned HTTP error 429 with ContextId
  tcid=0,…" (MicrosoftDocs/msteams-docs#7425, #4145, #1810: "we return 200 OK as soon as we get
  the webhook post request"). A 2xx whose body says so is **not** success: the embedded status
  decides — 429 is transient on the webhook's pace key (waiting ``THROTTLE_SECONDS``, as no
  Retry-After comes with it; Microsoft's advice in msteams-docs#7576 was "nearly 10-15
  seconds"), 408/409/425 and 5xx are transient, any other 4xx (400 bad card, 404 gone, 413 too
  large) is permanent, and failure text without a status ("Error contacting Microsoft Teams
  endpoint") is transient: Teams said it failed, so it was not posted.
- A 2xx whose body was cut off is ambiguous, except 202, whose body carries nothing.
- Other statuses follow ``bulletin.channels.http.status_error``: 429 is transient with the
  Retry-After (seconds or HTTP-date) on the pace key ``teams:<digest of host+path>``, 5xx
  transient, 400/401/403/404/410 and the other 4xx permanent.

Teams does not de-duplicate: a request that may have reached it (no answer in time, the
connection dropped after sending) is ``AmbiguousError`` and the delivery ends ``unknown``.

Pacing: one key per webhook URL, ``BULLETIN_TEAMS_PER_SECOND`` sends a second (default 4, the
connectors' documented "4 requests per second" per webhook; Power Automate throttles a flow
too). Cards over ``CARD_LIMIT_BYTES`` are refused before sending: Teams caps a message near
28 KB ("Request Entity too large", learn.microsoft.com/connectors/teams, Known issues), and a
workflow would accept the request with 202 and fail afterwards, where nobody would see it.

The URL's ``sig=`` parameter is its password: keys use a digest, logs a redacted form, and no
error message contains the URL.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from bulletin.channels.base import (
    AmbiguousError,
    Message,
    PermanentError,
    TransientError,
    TransportError,
)
from bulletin.channels.http import (
    RETRYABLE_4XX,
    Answer,
    HttpTransport,
    error_text,
    interval,
    scrub,
    status_error,
    url_digest,
)

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.4"
CARD_LIMIT_BYTES = 28 * 1024
DEFAULT_PER_SECOND = 4.0
THROTTLE_SECONDS = 15.0

_FAILURE_TEXT = re.compile(r"delivery failed|returned HTTP error", re.IGNORECASE)
_EMBEDDED_STATUS = re.compile(r"returned HTTP error (\d{3})", re.IGNORECASE)
_LINK_SCHEMES = ("http://", "https://", "mailto:")


def pace_key(url: str) -> str:
    """The webhook's throttling key: a digest of host and path, never the signed URL."""
    return f"teams:{url_digest(url, with_query=False)}"


def teams_payload(message: Message) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": CARD_CONTENT_TYPE,
                "contentUrl": None,
                "content": adaptive_card(message.title, message.text),
            }
        ],
    }


def adaptive_card(title: str, text: str) -> dict[str, Any]:
    heading = {
        "type": "TextBlock",
        "text": " ".join(title.split()),
        "weight": "Bolder",
        "size": "Medium",
        "wrap": True,
    }
    return {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "body": [heading, *card_blocks(text)],
    }


# -- Markdown → TextBlocks -------------------------------------------------------------------
#
# A TextBlock renders a small Markdown subset: **bold**, _italic_, "- " and "1. " lists with
# items separated by "\r", and [links](url); no headings, tables, images, code or HTML
# (learn.microsoft.com/adaptive-cards/authoring-cards/text-features). The body is parsed with
# the same parser that makes the HTML, then rebuilt from that subset only: one TextBlock per
# paragraph (hard breaks start a new block rather than trusting newlines to render), headings
# as bold blocks, lists as one block per run of items, quotes subtle, code monospace, tables
# one row per block. Strikethrough and inline code keep their marks as plain characters, and
# links other than http(s)/mailto keep only their text.


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # The configuration render.py uses: raw HTML stays text.
    return MarkdownIt("js-default").enable("table").enable("strikethrough")


def _href(raw: str | None) -> str | None:
    if not raw or not raw.lower().startswith(_LINK_SCHEMES):
        return None
    return raw.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def _inline(token: Token) -> list[str]:
    """A paragraph's inline content as card Markdown, one string per hard-broken line."""
    lines = [""]
    links: list[str | None] = []
    for child in token.children or []:
        kind = child.type
        if kind == "softbreak":
            lines[-1] += " "
        elif kind == "hardbreak":
            lines.append("")
        elif kind in ("strong_open", "strong_close"):
            lines[-1] += "**"
        elif kind in ("em_open", "em_close"):
            lines[-1] += "_"
        elif kind in ("s_open", "s_close"):
            lines[-1] += "~~"
        elif kind == "code_inline":
            lines[-1] += f"`{child.content}`"
        elif kind == "link_open":
            href = _href(str(child.attrGet("href") or ""))
            links.append(href)
            if href:
                lines[-1] += "["
        elif kind == "link_close":
            href = links.pop() if links else None
            if href:
                lines[-1] += f"]({href})"
        elif kind == "image":
            alt = child.content or "image"
            src = _href(str(child.attrGet("src") or ""))
            lines[-1] += f"[{alt}]({src})" if src else alt
        elif kind == "text":
            # What the parser did not take for a link must not become one in the card.
            lines[-1] += child.content.replace("](", "] (")
        else:
            lines[-1] += child.content
    return [" ".join(line.split()) for line in lines if line.strip()]


def _block(text: str, **options: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **options}


class _CardBuilder:
    def __init__(self) -> None:
        self.blocks: list[dict[str, Any]] = []
        self.separator = False
        self.quote = 0
        # Lists: the open lists' kinds and counters; items as [kind, marker, words].
        self.lists: list[list[Any]] = []
        self.items: list[list[Any]] = []
        self.open_items: list[int] = []
        self.rows: list[tuple[bool, list[str]]] = []

    def add(self, text: str, **options: Any) -> None:
        if not text.strip():
            return
        if self.separator:
            options["separator"] = True
            self.separator = False
        if self.quote:
            options["isSubtle"] = True
        self.blocks.append(_block(text, **options))

    def paragraph(self, lines: list[str]) -> None:
        if self.open_items:
            self.items[self.open_items[-1]][2].extend(lines)
            return
        for n, line in enumerate(lines):
            self.add(line, **({"spacing": "None"} if n else {}))

    def open_list(self, ordered: bool, start: int) -> None:
        self.lists.append(["ordered" if ordered else "bullet", start])

    def open_item(self) -> None:
        kind, number = self.lists[-1]
        marker = f"{number}." if kind == "ordered" else "-"
        self.lists[-1][1] = number + 1
        self.items.append([kind, marker, []])
        self.open_items.append(len(self.items) - 1)

    def close_list(self) -> None:
        self.lists.pop()
        if self.lists:
            return
        # Runs of one kind share a block ("\r" between items, as the card docs show).
        run: list[str] = []
        run_kind = None
        for kind, marker, words in self.items:
            if kind != run_kind and run:
                self.add("\r".join(run))
                run = []
            run_kind = kind
            run.append(f"{marker} {' '.join(words)}".rstrip())
        if run:
            self.add("\r".join(run))
        self.items.clear()

    def table(self) -> None:
        for n, (header, cells) in enumerate(self.rows):
            shown = [f"**{c}**" if header and c else c for c in cells]
            self.add(" | ".join(shown), **({"spacing": "None"} if n else {}))
        self.rows.clear()


def card_blocks(text: str) -> list[dict[str, Any]]:
    """The body of an announcement as Adaptive Card TextBlocks."""
    tokens = _parser().parse(text)
    card = _CardBuilder()
    header_row = False
    for index, token in enumerate(tokens):
        kind = token.type
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        inline = following if following is not None and following.type == "inline" else None
        if kind == "heading_open" and inline is not None:
            lines = _inline(inline)
            size = {"size": "Medium"} if token.tag in ("h1", "h2") else {}
            if card.open_items:
                card.paragraph(lines)
            else:
                card.add(" ".join(lines), weight="Bolder", **size)
        elif kind == "paragraph_open" and inline is not None:
            card.paragraph(_inline(inline))
        elif kind in ("bullet_list_open", "ordered_list_open"):
            start = int(token.attrGet("start") or 1)
            card.open_list(kind == "ordered_list_open", start)
        elif kind == "list_item_open":
            card.open_item()
        elif kind == "list_item_close":
            card.open_items.pop()
        elif kind in ("bullet_list_close", "ordered_list_close"):
            card.close_list()
        elif kind == "blockquote_open":
            card.quote += 1
        elif kind == "blockquote_close":
            card.quote -= 1
        elif kind in ("fence", "code_block"):
            code = token.content.rstrip("\n")
            if card.open_items:
                card.paragraph([" ".join(code.split())])
            else:
                card.add(code, fontType="Monospace")
        elif kind == "hr":
            card.separator = True
        elif kind == "thead_open":
            header_row = True
        elif kind == "thead_close":
            header_row = False
        elif kind == "tr_open":
            card.rows.append((header_row, []))
        elif kind in ("th_open", "td_open") and inline is not None and card.rows:
            card.rows[-1][1].append(" ".join(_inline(inline)))
        elif kind == "table_close":
            card.table()
    return card.blocks


# -- the transport ----------------------------------------------------------------------------


def _reported_failure(answer: Answer, *, key: str, url: str) -> TransportError | None:
    """For a 2xx: None when it is success, else what the error text in its body means."""
    if answer.body is None:
        if answer.status == 202:
            return None
        return AmbiguousError(f"Teams answered HTTP {answer.status} but the answer was cut off")
    if not _FAILURE_TEXT.search(answer.body):
        return None
    detail = f"Teams answered HTTP {answer.status} but reported a failure: " + error_text(
        scrub(answer.body, url=url)
    )
    embedded = _EMBEDDED_STATUS.search(answer.body)
    status = int(embedded.group(1)) if embedded else None
    if status == 429:
        wait = answer.retry_after if answer.retry_after is not None else THROTTLE_SECONDS
        return TransientError(f"{detail} (rate limited)", retry_after=wait, pace_key=key)
    if status is not None and 400 <= status < 500 and status not in RETRYABLE_4XX:
        return PermanentError(detail)
    return TransientError(detail)


class TeamsTransport(HttpTransport):
    name = "teams"
    deduplicates = False
    service = "Teams"

    def paces(self, message: Message) -> list[tuple[str, float]]:
        if message.place is None:
            return []  # send() reports it
        return [
            (
                pace_key(message.place.target),
                interval("BULLETIN_TEAMS_PER_SECOND", DEFAULT_PER_SECOND),
            )
        ]

    def send(self, message: Message) -> None:
        url = message.destination.target
        content = json.dumps(
            teams_payload(message), ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")
        if len(content) > CARD_LIMIT_BYTES:
            raise PermanentError(
                f"the Teams card is {len(content)} bytes; Teams accepts about "
                f"{CARD_LIMIT_BYTES} (shorten the announcement)"
            )
        answer = self.post(url, content, {"Content-Type": "application/json"})
        key = pace_key(url)
        error = status_error(
            answer, service="Teams", pace_key=key, url=url, throttle_default=THROTTLE_SECONDS
        ) or _reported_failure(answer, key=key, url=url)
        if error is not None:
            raise error
