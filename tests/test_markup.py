"""One Markdown pipeline, four renderers, no markup anyone did not write.

For every renderer — the email's HTML and prose, Slack's rich_text, Teams' card — nothing in an
announcement's title or body, and nothing in an employee's fields, can make a Slack control
sequence (``<!channel>``, ``<@U…>``, ``<#C…>``, ``<!subteam^…>``, ``<!date…>``) or card markup
it did not intend; links go only to http, https and mailto; personal fields are literal text.
Shown by a table of the attacks that were found and by hypothesis over arbitrary strings.
Long content is cut to fit each channel's limits, between elements, never inside a link, an
inline code span or a code block.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulletin.channels.base import Destination, Message, Recipient
from bulletin.channels.document import safe_url
from bulletin.channels.render import render_html, render_markdown, render_text
from bulletin.channels.slack_blocks import (
    BLOCK_CHARS,
    HEADER_LIMIT,
    MAX_BLOCKS,
    READ_MORE,
    TOTAL_CHARS,
    size,
    slack_message,
)
from bulletin.channels.teams_card import PAYLOAD_LIMIT, teams_card
from tests.slack_server import blocks_too_long
from tests.strategies import properties
from tests.test_parser_properties import dangerous

PAGE = "https://bulletin.example.com/announcements/7/"
GENERAL = Destination(name="#general", target="C0GENERAL")
MALLORY = "Mallory *Star* [win](https://evil.example) <!channel> {{DATE(2017-02-14T06:00:00Z)}}"
# Everything Slack reads as a control sequence in text it parses (mrkdwn and the fallback).
SLACK_CONTROL = re.compile(r"<[!@#]|<(?:https?|mailto):")


def person(name: str = "Ada Lovelace", email: str = "ada@example.com") -> Recipient:
    return Recipient(email=email, name=name, timezone="UTC")


def message(body: str, *, to: Recipient | None = None, title: str = "Notice") -> Message:
    place = None if to else GENERAL
    return Message(
        "k", title, "", "", recipient=to, place=place, body=body, web_url=PAGE, delivery_id=1
    )


def leaves(value: Any) -> list[dict[str, Any]]:
    """Every innermost element of a Slack message (text and link runs), or of a card (runs)."""
    if isinstance(value, list):
        return [leaf for item in value for leaf in leaves(item)]
    if not isinstance(value, dict):
        return []
    inner = value.get("elements") or value.get("inlines")
    if isinstance(inner, list):
        return leaves(inner)
    if value.get("type") in ("header", "divider", "RichTextBlock"):
        return []
    return [value]


def card_runs(card: Any) -> list[dict[str, Any]]:
    """The runs of a card's body, title first."""
    return leaves(card.payload["attachments"][0]["content"]["body"])


def slack_problems(body: str, to: Recipient | None) -> list[str]:
    laid = slack_message(message(body, to=to))
    problems = []
    for leaf in leaves(laid.blocks):
        if leaf["type"] not in ("text", "link"):
            problems.append(f"a {leaf['type']} element")
        if leaf["type"] == "link" and safe_url(leaf["url"]) != leaf["url"]:
            problems.append(f"a link to {leaf['url']!r}")
    if SLACK_CONTROL.search(laid.text):
        problems.append(f"a control sequence in the fallback: {laid.text!r}")
    return problems


def teams_problems(body: str, to: Recipient | None) -> list[str]:
    card = teams_card(message(body, to=to)).payload["attachments"][0]["content"]
    problems = []
    for block in card["body"]:
        if block["type"] != "RichTextBlock":  # a TextBlock would read Markdown
            problems.append(f"a {block['type']}")
    for run in leaves(card["body"]):
        if run.get("type") != "TextRun":
            problems.append(f"a {run.get('type')} run")
        if "{{" in run["text"]:
            problems.append(f"a card function in {run['text']!r}")
        url = run.get("selectAction", {}).get("url")
        if url is not None and safe_url(url) != url:
            problems.append(f"a link to {url!r}")
    return problems


# --- the attacks that were found, in every renderer ------------------------------------------

ATTACKS = [
    "[Details](!channel)",
    "[ping](<!here>)",
    "[you](@U0123ABC)",
    "[room](#C0123ABC)",
    "<!channel> <!here> <!everyone> <@U0123> <#C0123> <!subteam^S0123> <!date^1392734382^x|y>",
    "[x](javascript:alert(1)) [y](vbscript:msgbox) [z](data:text/html,hi) [w](/relative)",
    "![img](javascript:alert(1)) ![pic](!channel)",
    "**bold** and {{DATE(2017-02-14T06:00:00Z, SHORT)}}",
]


@pytest.mark.parametrize("body", ATTACKS)
@pytest.mark.parametrize("to", [None, person(MALLORY)], ids=["a place", "a person"])
def test_no_body_makes_a_slack_mention_a_card_function_or_an_unsafe_link(
    body: str, to: Recipient | None
) -> None:
    assert slack_problems(f"Hi {{{{ name }}}}, {body}", to) == []
    assert teams_problems(f"Hi {{{{ name }}}}, {body}", to) == []
    html = render_html(body, to)
    assert not re.search(r'href="(?!https?:|mailto:)', html), html
    assert dangerous(html) == [], html
    assert "<!channel" not in html


def test_a_link_to_channel_keeps_its_label_and_loses_its_target_everywhere() -> None:
    laid = slack_message(message("See [Details](!channel) now."))
    assert leaves(laid.blocks) == [{"type": "text", "text": "See Details now."}]
    card = teams_card(message("See [Details](!channel) now."))
    assert [run["text"] for run in card_runs(card)][1:] == ["See ", "Details", " now."]
    assert render_html("[Details](!channel)", None) == "<p>Details</p>\n"
    assert render_text("[Details](!channel)", None) == "Details"


def test_a_name_with_markup_reaches_every_channel_as_the_same_literal_text() -> None:
    mallory = person(MALLORY)
    body = "Hello {{ name }}!"
    slack = slack_message(message(body, to=mallory))
    assert leaves(slack.blocks) == [{"type": "text", "text": f"Hello {MALLORY}!"}]
    card = teams_card(message(body, to=mallory))
    [greeting] = [run["text"] for run in card_runs(card)][1:]
    assert greeting == f"Hello {MALLORY}!".replace("{{", "{\u200b{")
    assert render_text(body, mallory) == f"Hello {MALLORY}!"
    html = render_html(body, mallory)
    assert "<strong>" not in html and "<a " not in html and "&lt;!channel&gt;" in html
    # Webhook receivers render Markdown themselves: the name comes escaped, so it stays text.
    assert render_markdown(body, mallory) == (
        r"Hello Mallory \*Star\* \[win\]\(https://evil\.example\) \<\!channel\> "
        r"\{\{DATE\(2017\-02\-14T06:00:00Z\)\}\}!"
    )


def test_the_fallback_text_escapes_slacks_three_control_characters() -> None:
    laid = slack_message(message("Tom & Jerry <3 > 2 <!channel>", title="A <b> & C"))
    assert laid.text == "A &lt;b&gt; &amp; C\n\nTom &amp; Jerry &lt;3 &gt; 2 &lt;!channel&gt;"


# --- the same, over arbitrary strings ----------------------------------------------------------

PIECES = st.sampled_from([*ATTACKS, "{{ name }}", "{{ email }}", "`code`", "**", "_", "["])
BODIES = st.lists(PIECES | st.text(max_size=12), min_size=1, max_size=6).map(" \n".join)
NAMES = st.sampled_from([MALLORY, "<@U0123>", "**x**"]) | st.text(max_size=20)


@properties(examples=300)
@given(body=BODIES, name=NAMES)
def test_no_string_in_a_body_or_a_name_makes_markup_in_any_renderer(body: str, name: str) -> None:
    someone = person(name, email=f"{len(name)}@example.com")
    assert slack_problems(body, someone) == []
    assert teams_problems(body, someone) == []
    html = render_html(body, someone)
    assert not re.search(r'href="(?!https?:|mailto:)', html)


@properties(examples=200)
@given(name=st.text(min_size=1, max_size=40))
def test_a_name_is_literal_text_in_slack_teams_and_the_text_part(name: str) -> None:
    someone = person(name)
    slack = slack_message(message("Hi {{ name }}", to=someone))
    assert "".join(leaf["text"] for leaf in leaves(slack.blocks)) == f"Hi {name}"
    card = teams_card(message("Hi {{ name }}", to=someone))
    shown = "".join(run["text"] for run in card_runs(card)[1:]).replace("\u200b", "")
    assert shown == f"Hi {name}"
    assert render_text("Hi {{ name }}", someone) == f"Hi {name}"


# --- long content ------------------------------------------------------------------------------


def body_of(length: int) -> str:
    """Paragraphs with links, code spans and a code block, to ``length`` characters."""
    unit = (
        "Read [the travel policy for visitors](https://wiki.example.com/travel) and run "
        "`bulletin status --json` before Friday. " * 4 + "\n\n```\nmake test && make bench\n```\n\n"
    )
    return (unit * (length // len(unit) + 1))[:length]


def links_and_code(blocks: Any) -> list[tuple[str, str]]:
    return [
        (leaf.get("url", ""), leaf["text"])
        for leaf in leaves(blocks)
        if leaf["type"] == "link" or leaf.get("style", {}).get("code")
    ]


@pytest.mark.parametrize("length", [13_000, 40_000, 100_000])
def test_a_long_body_fits_slacks_limits_and_ends_with_a_link_to_the_rest(length: int) -> None:
    laid = slack_message(message(body_of(length)))
    _header, *body, more = laid.blocks
    assert laid.cut and len(laid.blocks) <= MAX_BLOCKS
    assert sum(size(block) for block in body) <= TOTAL_CHARS - size(more)
    assert all(size(block) <= BLOCK_CHARS for block in body)
    assert not blocks_too_long(laid.blocks)
    assert leaves(more) == [
        {"type": "link", "url": PAGE, "text": READ_MORE, "style": {"bold": True}}
    ]
    # Cut between elements only: every link and code span is whole, every code block too.
    whole = {("https://wiki.example.com/travel", "the travel policy for visitors"),
             ("", "bulletin status --json")}  # fmt: skip
    assert set(links_and_code(body)) == whole
    code = [leaf["text"] for leaf in leaves(body) if leaf["text"].startswith("make")]
    assert code and set(code) == {"make test && make bench"}


def test_a_body_at_slacks_limit_is_sent_whole_and_one_character_more_is_cut() -> None:
    # The room a link to the rest might need is kept back, with the title's characters.
    room = TOTAL_CHARS - len("Notice") - len(READ_MORE) - len(PAGE)
    whole = slack_message(message("x" * room))
    assert not whole.cut and whole.shown_chars == room
    assert [size(block) for block in whole.blocks[1:]] == [3000, 3000, 3000, room - 9000]
    assert slack_message(message("x" * (room + 1))).cut


def test_a_single_code_block_longer_than_a_section_is_one_block_and_never_split() -> None:
    code = "\n".join(f"line {n:04}" for n in range(500))  # 4,999 characters
    laid = slack_message(message(f"Before.\n\n```\n{code}\n```\n\nAfter."))
    assert not laid.cut
    fences = [leaf for leaf in leaves(laid.blocks) if leaf["text"].startswith("line 0000")]
    assert [leaf["text"] for leaf in fences] == [code]


def test_text_without_spaces_is_cut_inside_plain_text_only() -> None:
    japanese = "お知らせ" * 4000  # 16,000 characters, not one space
    laid = slack_message(message(japanese))
    assert laid.cut and 9000 < laid.shown_chars <= TOTAL_CHARS
    shown = "".join(leaf["text"] for leaf in leaves(laid.blocks)[:-1])
    assert shown == japanese[: laid.shown_chars]


def test_a_long_title_is_clipped_to_the_header_limit_and_kept_whole_in_the_fallback() -> None:
    laid = slack_message(message("body", title="T" * 400))
    assert len(laid.blocks[0]["text"]["text"]) == HEADER_LIMIT
    assert laid.text.startswith("T" * 399)


def test_fifty_short_paragraphs_separated_by_rules_stop_at_fifty_blocks() -> None:
    laid = slack_message(message("\n\n---\n\n".join(f"Point {n}." for n in range(80))))
    assert laid.cut and len(laid.blocks) == MAX_BLOCKS
    assert laid.blocks[-1]["elements"][0]["elements"][0]["text"] == READ_MORE


@pytest.mark.parametrize("length", [13_000, 40_000, 100_000])
def test_a_long_body_fits_teams_28000_bytes_and_ends_with_a_button_to_the_rest(
    length: int,
) -> None:
    card = teams_card(message(body_of(length)))
    sent = json.dumps(card.payload, ensure_ascii=False, separators=(",", ":")).encode()
    assert card.cut and PAYLOAD_LIMIT - 600 < len(sent) <= PAYLOAD_LIMIT
    content = card.payload["attachments"][0]["content"]
    assert content["actions"] == [{"type": "Action.OpenUrl", "title": READ_MORE, "url": PAGE}]
    links = {run["selectAction"]["url"] for run in leaves(content["body"]) if "selectAction" in run}
    assert links == {"https://wiki.example.com/travel"}
    whole_links = [r["text"] for r in leaves(content["body"]) if "selectAction" in r]
    assert set(whole_links) == {"the travel policy for visitors"}


def test_multibyte_text_is_measured_in_bytes_for_teams() -> None:
    card = teams_card(message("😀 " * 20_000))  # four bytes and a space each
    sent = json.dumps(card.payload, ensure_ascii=False, separators=(",", ":")).encode()
    assert card.cut and len(sent) <= PAYLOAD_LIMIT


def test_a_short_body_is_not_cut_and_has_no_link_to_the_rest() -> None:
    laid = slack_message(message("Short."))
    assert not laid.cut and READ_MORE not in json.dumps(laid.blocks)
    card = teams_card(message("Short."))
    assert not card.cut and "actions" not in card.payload["attachments"][0]["content"]


def test_a_name_holding_a_placeholders_private_character_is_not_filled_again() -> None:
    odd = person("A\ue001B", email="odd@example.com")  # \ue001 stands for first_name inside
    assert render_text("{{ name }} / {{ email }}", odd) == "A\ue001B / odd@example.com"
    assert render_html("[me](https://x.example/u/{{ email }})", odd) == (
        '<p><a href="https://x.example/u/odd@example.com" rel="noopener noreferrer">me</a></p>\n'
    )


def test_without_a_page_to_link_to_a_cut_message_says_the_rest_is_in_bulletin() -> None:
    unlinked = Message("k", "Notice", "", "", place=GENERAL, body="word " * 20_000)
    card = teams_card(unlinked)
    sent = json.dumps(card.payload, ensure_ascii=False, separators=(",", ":")).encode()
    assert card.cut and len(sent) <= PAYLOAD_LIMIT
    assert card_runs(card)[-1]["text"] == f"{READ_MORE} in Bulletin."
    laid = slack_message(unlinked)
    assert laid.cut and leaves(laid.blocks)[-1]["text"] == f"{READ_MORE} in Bulletin."
