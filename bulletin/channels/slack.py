"""Slack through the Web API: a Block Kit message to a channel, or to a person's DM.

Slack has no idempotency key, so Slack does not de-duplicate: once ``chat.postMessage`` may
have reached Slack, a failure is ambiguous and dispatch marks the delivery ``unknown`` rather
than risk a second post. Every call before it (``users.lookupByEmail``, ``conversations.open``)
posts nothing, so those failures are merely transient.

How failures map (Slack's documented ``error`` codes, https://docs.slack.dev/reference/methods):

- HTTP 429 or ``ratelimited``: transient, with Slack's Retry-After and a pace key per method.
- Auth, scope, unknown channel or user, archived channel, bad content: permanent.
- ``service_unavailable``, ``request_timeout`` (Slack: "the POST data was either missing or
  truncated", so nothing was posted), workspace migrations: transient.
- ``internal_error``, ``fatal_error``: Slack says "it's possible some aspect of the operation
  succeeded", so after ``chat.postMessage`` they are ambiguous; before it, transient.
- A code this module does not know: permanent (a visible failure beats an unbounded retry loop
  or a possible duplicate), logged as a warning so it can be classified.
- No readable answer (timeout, reset, HTML, truncated JSON, a 5xx page) once the request was
  sent: ambiguous for ``chat.postMessage``, transient for the look-ups. A 4xx page without a
  Slack answer (a proxy refusing the request) is permanent: nothing was processed.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from functools import lru_cache
from http.client import HTTPException
from typing import Any
from urllib.error import URLError

from django.core.exceptions import ImproperlyConfigured
from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web import SlackResponse

from bulletin.channels.base import (
    AmbiguousError,
    Message,
    PermanentError,
    Recipient,
    TransientError,
    Transport,
    TransportError,
)
from bulletin.conf import secret

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://slack.com/api/"
DEFAULT_TIMEOUT = 10.0
DEFAULT_PER_MINUTE = 100.0
POST = "chat.postMessage"
# Block Kit limits: a section's text, a header's text, blocks per message.
SECTION_LIMIT = 3000
HEADER_LIMIT = 150
MAX_BLOCKS = 50
# Notifications show a snippet; Slack truncates ``text`` past 40,000 characters anyway.
FALLBACK_LIMIT = 3000
TRUNCATED = "\n_(message truncated)_"

_RATE_LIMITED = frozenset({"ratelimited", "rate_limited"})
# Nothing happened on Slack's side; the same request can work later.
_TRANSIENT = frozenset(
    {"service_unavailable", "request_timeout", "team_added_to_org", "org_login_required"}
)
# Slack: "It's possible some aspect of the operation succeeded before the error was raised."
_MAYBE_DONE = frozenset({"internal_error", "fatal_error"})
# Documented codes that will not change on a retry; any other code is permanent as well, but
# is logged, because Slack may have added a code this module should learn about.
_PERMANENT = frozenset(
    {
        "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
        "no_permission", "missing_scope", "not_allowed_token_type", "ekm_access_denied",
        "access_denied", "users_not_found", "user_not_found", "user_not_visible",
        "user_disabled", "cannot_dm_bot", "channel_not_found", "not_in_channel", "is_archived",
        "msg_too_long", "no_text", "invalid_blocks", "invalid_blocks_format",
        "restricted_action", "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel", "invalid_arguments", "invalid_arg_name",
        "invalid_form_data", "invalid_post_type", "missing_post_type", "invalid_charset",
        "too_many_attachments", "invalid_user_combination", "method_deprecated",
        "deprecated_endpoint",
    }
)  # fmt: skip


def _number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = 0.0
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be a positive number, got {raw!r}")
    return value


def _api_url() -> str:
    url = os.environ.get("SLACK_API_URL", "").strip() or DEFAULT_API_URL
    return url if url.endswith("/") else f"{url}/"


def _retry_after(headers: Any) -> float | None:
    # slack_sdk hands back a plain dict whose key case depends on the path it took.
    for key, value in dict(headers or {}).items():
        if key.lower() == "retry-after":
            try:
                return max(float(str(value).strip()), 0.0)
            except ValueError:
                return None
    return None


def _unreadable(method: str, what: str, status: int | None) -> TransportError:
    """No Slack answer to go on: was anything done?"""
    detail = f"slack {method}: no readable answer ({what})"
    if status is not None and 400 <= status < 500:
        return PermanentError(f"{detail}: the request was refused")
    if method == POST:
        return AmbiguousError(f"{detail}: the message may have been posted")
    return TransientError(detail)


def _by_code(method: str, code: str) -> TransportError:
    detail = f"slack {method}: {code}"
    if code in _TRANSIENT:
        return TransientError(detail)
    if code in _MAYBE_DONE:
        # Before chat.postMessage nothing visible can have happened, whatever else did.
        if method == POST:
            return AmbiguousError(f"{detail}: the message may have been posted")
        return TransientError(detail)
    if code not in _PERMANENT:
        log.warning("unrecognised Slack error code", extra={"slack_error": code})
    return PermanentError(detail)


def classify(method: str, error: SlackApiError) -> TransportError:
    """Slack's answer (an ``ok: false`` body or an HTTP error) as a transport outcome."""
    response = error.response
    status = int(response.status_code)
    data = response.data if isinstance(response.data, dict) else {}
    code = data.get("error")
    if status == 429 or code in _RATE_LIMITED:
        wait = _retry_after(response.headers)
        return TransientError(
            f"slack {method}: rate limited ({code or 'HTTP 429'}, Retry-After {wait})",
            retry_after=wait,
            pace_key=f"slack:{method}",
        )
    # slack_sdk turns a non-JSON body into ok=false plus a made-up "error" sentence.
    if "ok" not in data or not isinstance(code, str) or not re.fullmatch(r"[a-z0-9_]+", code):
        return _unreadable(method, f"HTTP {status}", status)
    return _by_code(method, code)


# --- Markdown to Slack mrkdwn --------------------------------------------------------------


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    # The same dialect as the HTML rendering, so every channel reads the body alike.
    return MarkdownIt("js-default").enable("table").enable("strikethrough")


def escape(text: str) -> str:
    """Slack's three control characters as the entities its formatting docs ask for."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_MARKS = {"strong": "*", "em": "_", "s": "~"}


def _link(node: SyntaxTreeNode, label: str, plain: bool) -> str:
    url = str(node.attrs.get("href") or node.attrs.get("src") or "")
    if plain or not url:
        return label or escape(url)
    # A "|" would end the URL early inside Slack's <url|label> syntax.
    target = escape(url).replace("|", "%7C")
    return f"<{target}|{label}>" if label and label != escape(url) else f"<{target}>"


def _inline(node: SyntaxTreeNode, plain: bool) -> str:
    inner = "".join(_inline(child, plain) for child in node.children)
    if node.type in _MARKS:
        mark = "" if plain or not inner.strip() else _MARKS[node.type]
        return f"{mark}{inner}{mark}"
    if node.type in ("link", "image"):
        return _link(node, inner, plain)
    if node.type == "code_inline":
        return escape(node.content) if plain else f"`{escape(node.content)}`"
    if node.type in ("softbreak", "hardbreak"):
        return "\n"
    return inner if node.children else escape(node.content)


def _list(node: SyntaxTreeNode, plain: bool) -> str:
    start = int(str(node.attrs.get("start", 1))) if node.type == "ordered_list" else 0
    items = []
    for number, item in enumerate(node.children, start):
        marker = f"{number}." if node.type == "ordered_list" else "•"
        first, *rest = "\n".join(_block(child, plain) for child in item.children).split("\n")
        items.append("\n".join([f"{marker} {first}", *(f"    {line}" for line in rest)]))
    return "\n".join(items)


def _block(node: SyntaxTreeNode, plain: bool) -> str:
    kind = node.type
    if kind == "inline":
        return _inline(node, plain)
    if kind == "heading":  # mrkdwn has no headings: a bold line reads as one
        text = "".join(_block(child, True) for child in node.children)
        return text if plain else f"*{text}*"
    if kind in ("bullet_list", "ordered_list"):
        return _list(node, plain)
    if kind in ("fence", "code_block"):
        code = escape(node.content.rstrip("\n"))
        return code if plain else f"```\n{code}\n```"
    if kind == "hr":
        return "" if plain else "──────────"
    if kind == "tr":
        return " | ".join(_block(cell, plain) for cell in node.children)
    separator = "\n\n" if kind in ("root", "blockquote") else "\n"
    text = separator.join(_block(child, plain) for child in node.children)
    if kind == "blockquote" and not plain:
        return "\n".join(f">{line}" if not line else f"> {line}" for line in text.split("\n"))
    return text


def to_mrkdwn(markdown: str, *, plain: bool = False) -> str:
    """Markdown as Slack mrkdwn (or, with ``plain``, as text without formatting marks).

    Text is escaped for Slack's control characters either way: ``text`` is parsed too.
    """
    return _block(SyntaxTreeNode(_markdown().parse(markdown)), plain).strip()


def _cut(text: str, limit: int) -> int:
    """Where to cut ``text`` so the head fits: a paragraph, line or word break if possible."""
    for separator in ("\n\n", "\n", " "):
        at = text.rfind(separator, 0, limit)
        if at > limit // 2 or (separator == " " and at > 0):
            return at
    amp = text.rfind("&", max(limit - 5, 0), limit)  # never halve an entity like &amp;
    return amp if amp > 0 and ";" not in text[amp:limit] else limit


def split(text: str, limit: int = SECTION_LIMIT, most: int = MAX_BLOCKS - 1) -> list[str]:
    """At most ``most`` pieces of at most ``limit`` characters; the last says if text was lost."""
    pieces: list[str] = []
    text = text.strip()
    while len(text) > limit:
        if len(pieces) == most - 1:
            text = text[: _cut(text, limit - len(TRUNCATED))].rstrip() + TRUNCATED
            break
        at = _cut(text, limit)
        pieces.append(text[:at].rstrip())
        text = text[at:].strip()
    return [*pieces, text] if text else pieces


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def blocks_for(title: str, markdown: str) -> tuple[list[dict[str, Any]], str]:
    """Block Kit blocks (a header, then mrkdwn sections) and the plain ``text`` fallback."""
    title = " ".join(title.split())
    blocks: list[dict[str, Any]] = []
    if title:
        header = {"type": "plain_text", "text": _clip(title, HEADER_LIMIT), "emoji": True}
        blocks.append({"type": "header", "text": header})
    for piece in split(to_mrkdwn(markdown), most=MAX_BLOCKS - len(blocks)):
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": piece}})
    fallback = "\n\n".join(
        part for part in (escape(title), to_mrkdwn(markdown, plain=True)) if part
    )
    if not blocks:
        raise PermanentError("slack: the message has neither a title nor a body")
    return blocks, _clip(fallback, FALLBACK_LIMIT)


# --- The transport -------------------------------------------------------------------------


class SlackTransport(Transport):
    name = "slack"
    # No idempotency key on chat.postMessage: an interrupted post must end `unknown`.
    deduplicates = False

    def __init__(self) -> None:
        self._client: WebClient | None = None
        self._dm_channels: dict[str, str] = {}

    def paces(self, message: Message) -> list[tuple[str, float]]:
        """One post per second per conversation, a workspace budget, and the methods' holds.

        The zero-spaced method keys cost nothing until a 429 holds them (``pace_key``), and
        then make every worker wait out Slack's Retry-After, not just the one that got it.
        """
        per_minute = _number("BULLETIN_SLACK_PER_MINUTE", DEFAULT_PER_MINUTE)
        paces = [("slack:workspace", 60.0 / per_minute), (f"slack:{POST}", 0.0)]
        if message.recipient is None:
            return [(f"slack:channel:{message.destination.target}", 1.0), *paces]
        person = message.recipient
        who = person.email.lower() or person.slack_user_id
        paces += [(f"slack:user:{who}", 1.0), ("slack:conversations.open", 0.0)]
        return paces if person.slack_user_id else [*paces, ("slack:users.lookupByEmail", 0.0)]

    def open(self) -> None:
        if self._client is not None:
            return
        try:
            token = secret("SLACK_BOT_TOKEN")
            timeout = _number("SLACK_TIMEOUT", DEFAULT_TIMEOUT)
        except ImproperlyConfigured as exc:
            raise PermanentError(f"slack is misconfigured: {exc}") from None
        if not token:
            raise PermanentError("SLACK_BOT_TOKEN is not set")
        # retry_handlers=[]: slack_sdk's default ConnectionErrorRetryHandler silently resends
        # after a connection reset, which for chat.postMessage can post the message twice.
        # Retrying is dispatch's decision, made with the delivery's state in the database.
        self._client = WebClient(
            token=token,
            base_url=_api_url(),
            timeout=timeout,  # type: ignore[arg-type]  # urllib takes float seconds
            retry_handlers=[],
        )
        self._dm_channels = {}

    def close(self) -> None:
        # urllib opens a connection per call: there is nothing to shut, only state to drop.
        self._client = None
        self._dm_channels = {}

    def send(self, message: Message) -> None:
        blocks, fallback = blocks_for(message.title, message.text)  # fails before any traffic
        self.open()
        if message.recipient is None:
            channel = message.destination.target
        else:
            channel = self._dm_channel(message.recipient)
        response = self._call(
            POST,
            lambda client: client.chat_postMessage(channel=channel, text=fallback, blocks=blocks),
        )
        posted = {"delivery_id": message.delivery_id, "channel": channel, "ts": response.get("ts")}
        log.debug("posted to Slack", extra=posted)

    def _dm_channel(self, person: Recipient) -> str:
        """The DM conversation with a person: their stored id, or a look-up by email."""
        key = person.slack_user_id or person.email.lower()
        if not key:
            raise PermanentError("slack: the recipient has neither a Slack user id nor an email")
        if key not in self._dm_channels:
            user_id = person.slack_user_id or self._user_id(person.email)
            opened = self._call("conversations.open", lambda c: c.conversations_open(users=user_id))
            self._dm_channels[key] = self._field(opened, "conversations.open", "channel", "id")
        return self._dm_channels[key]

    def _user_id(self, email: str) -> str:
        found = self._call("users.lookupByEmail", lambda c: c.users_lookupByEmail(email=email))
        return self._field(found, "users.lookupByEmail", "user", "id")

    @staticmethod
    def _field(response: SlackResponse, method: str, *path: str) -> str:
        value: Any = response.data
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if not isinstance(value, str) or not value:
            raise _unreadable(method, f"no {'.'.join(path)} in the answer", None)
        return value

    def _call(self, method: str, call: Callable[[WebClient], SlackResponse]) -> SlackResponse:
        """One Web API call, with every way it can fail turned into a transport outcome."""
        client = self._client
        if client is None:
            raise RuntimeError("SlackTransport.open() must come first")
        try:
            return call(client)
        except SlackApiError as exc:
            raise classify(method, exc) from None  # its text repeats Slack's whole answer
        except SlackRequestError as exc:
            raise PermanentError(f"slack {method}: cannot make the request: {exc}") from None
        except URLError as exc:
            # urllib raises URLError only while connecting or writing the request (HTTP errors
            # are answered by slack_sdk itself): Slack never received a whole request.
            raise TransientError(f"slack {method}: cannot reach Slack: {exc.reason}") from exc
        except (OSError, HTTPException, ValueError, AttributeError) as exc:
            # The request went out and its answer was lost or garbled (timeout, reset, bad
            # bytes, JSON that is not an object): Slack may have acted on it.
            raise _unreadable(method, f"{type(exc).__name__}: {exc}"[:200], None) from exc
