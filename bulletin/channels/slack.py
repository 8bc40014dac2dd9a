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
import re
from collections.abc import Callable
from http.client import HTTPException
from typing import Any
from urllib.error import URLError

from django.core.exceptions import ImproperlyConfigured
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
from bulletin.channels.slack_blocks import slack_message
from bulletin.channels.slack_identity import (
    NoIdentities,
    SlackIdentities,
    SlackIdentity,
    email_of,
    known_channel,
    known_user,
)
from bulletin.conf import options, secret

log = logging.getLogger(__name__)

# Paces, the timeout and the API's base URL (SLACK_API_URL, which tests point at a loopback
# server) are options(): bulletin.conf.
POST = "chat.postMessage"
# The message itself (rich_text blocks within Slack's limits) is bulletin.channels.slack_blocks.

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
        "msg_too_long", "msg_blocks_too_long", "no_text", "invalid_blocks",
        "invalid_blocks_format",
        "restricted_action", "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel", "invalid_arguments", "invalid_arg_name",
        "invalid_form_data", "invalid_post_type", "missing_post_type", "invalid_charset",
        "too_many_attachments", "invalid_user_combination", "method_deprecated",
        "deprecated_endpoint",
    }
)  # fmt: skip


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


# --- The transport -------------------------------------------------------------------------


LOOKUP = "users.lookupByEmail"
OPEN = "conversations.open"
# Slack's rate-limit tiers (https://docs.slack.dev/apis/web-api/rate-limits): both methods are
# Tier 3, "50+ per minute" (options().slack_lookups_per_minute), counted per method, per app,
# per workspace. Each has its own pace key at that budget, apart from chat.postMessage's,
# reserved only by a message that will make the call: a remembered DM reserves neither.
# Answers that can mean a remembered identity went stale (the person was deactivated, removed
# and invited again under a new id, the DM is gone). Nothing was posted: the identity is
# forgotten and the delivery tried again, looking the person up afresh under the Tier 3 pace.
_STALE = frozenset(
    {"users_not_found", "user_not_found", "account_inactive", "cannot_dm_bot", "channel_not_found"}
)


class _Refused(Exception):
    """Slack answered a code in ``_STALE``; ``error`` is what it means when nothing remembered
    was used."""

    def __init__(self, method: str, code: str, error: TransportError) -> None:
        super().__init__(f"slack {method}: {code}")
        self.method, self.code, self.error = method, code, error


class SlackTransport(Transport):
    name = "slack"
    # No idempotency key on chat.postMessage: an interrupted post must end `unknown`.
    deduplicates = False
    reads_parts = False  # lays out the Markdown body itself (see Transport)

    def __init__(self, identities: SlackIdentities | None = None) -> None:
        self._client: WebClient | None = None
        self._identities: SlackIdentities = identities or NoIdentities()
        # This drain's DMs by person: a second message in the drain asks Slack nothing, even
        # before a claim brings back what the first one found.
        self._dms: dict[str, SlackIdentity] = {}

    def paces(self, message: Message) -> list[tuple[str, float]]:
        """One post per second per conversation, a workspace budget, the methods' holds, and
        the Tier 3 look-ups this message will make.

        The zero-spaced method keys cost nothing until a 429 holds them (``pace_key``), and
        then make every worker wait out Slack's Retry-After, not just the one that got it.
        """
        paces = [("slack:workspace", 60.0 / options().slack_per_minute), (f"slack:{POST}", 0.0)]
        if message.recipient is None:
            return [(f"slack:channel:{message.destination.target}", 1.0), *paces]
        person = message.recipient
        return [*paces, (f"slack:user:{_who(person)}", 1.0), *self._lookups(person)]

    def _lookups(self, person: Recipient) -> list[tuple[str, float]]:
        if _who(person) in self._dms or known_channel(person):
            return []
        budget = options().slack_lookups_per_minute
        calls = [OPEN] if known_user(person) else [LOOKUP, OPEN]
        return [(f"slack:{method}", 60.0 / budget) for method in calls]

    def open(self) -> None:
        if self._client is not None:
            return
        try:
            token = secret("SLACK_BOT_TOKEN")  # a secret, read when used (SLACK_BOT_TOKEN_FILE)
        except ImproperlyConfigured as exc:
            raise PermanentError(f"slack is misconfigured: {exc}") from None
        if not token:
            raise PermanentError("SLACK_BOT_TOKEN is not set")
        # retry_handlers=[]: slack_sdk's default ConnectionErrorRetryHandler silently resends
        # after a connection reset, which for chat.postMessage can post the message twice.
        # Retrying is dispatch's decision, made with the delivery's state in the database.
        self._client = WebClient(
            token=token,
            base_url=options().slack_api_url,
            timeout=options().slack_timeout,  # type: ignore[arg-type]  # urllib takes float seconds
            retry_handlers=[],
        )
        self._dms = {}

    def close(self) -> None:
        # urllib opens a connection per call: there is nothing to shut, only state to drop.
        self._client = None
        self._dms = {}

    def send(self, message: Message) -> None:
        laid = slack_message(message)  # fails before any traffic; cut to fit, never too long
        blocks, fallback = laid.blocks, laid.text
        self.open()
        if message.recipient is not None:
            return self._send_dm(message, message.recipient, blocks, fallback)
        try:
            self._post(message, message.destination.target, blocks, fallback)
        except _Refused as refused:
            raise refused.error from None

    def _post(
        self, message: Message, channel: str, blocks: list[dict[str, Any]], fallback: str
    ) -> None:
        response = self._call(
            POST,
            lambda client: client.chat_postMessage(channel=channel, text=fallback, blocks=blocks),
        )
        posted = {"delivery_id": message.delivery_id, "channel": channel, "ts": response.get("ts")}
        log.debug("posted to Slack", extra=posted)

    def _send_dm(
        self, message: Message, person: Recipient, blocks: list[dict[str, Any]], fallback: str
    ) -> None:
        """Post to the person's DM: remembered, or found (and remembered) now."""
        remembered = self._remembered(person)
        # A member id found by email earlier is remembered too, even before its DM is.
        used_memory = remembered is not None or known_user(person) != person.slack_user_id
        try:
            identity = remembered or self._open_dm(message, person)
            self._post(message, identity.channel, blocks, fallback)
        except _Refused as refused:
            raise self._stale(message, person, refused, used_memory) from None

    def _remembered(self, person: Recipient) -> SlackIdentity | None:
        if (identity := self._dms.get(_who(person))) is not None:
            return identity
        channel = known_channel(person)
        if not channel:
            return None
        return SlackIdentity(known_user(person), channel, found_by_email=not person.slack_user_id)

    def _open_dm(self, message: Message, person: Recipient) -> SlackIdentity:
        """Ask Slack for the person's member id (unless known) and their DM; remember both."""
        user_id = known_user(person)
        if not user_id:
            if not email_of(person):
                raise PermanentError(
                    "slack: the recipient has neither a Slack user id nor an email"
                )
            found = self._call(LOOKUP, lambda c: c.users_lookupByEmail(email=email_of(person)))
            user_id = self._field(found, LOOKUP, "user", "id")
        channel = person.slack_dm_channel if person.slack_dm_user == user_id else ""
        if not channel:  # a new email may still be the same Slack account, and the same DM
            opened = self._call(OPEN, lambda c: c.conversations_open(users=user_id))
            channel = self._field(opened, OPEN, "channel", "id")
        identity = SlackIdentity(user_id, channel, found_by_email=not person.slack_user_id)
        self._identities.remember(person, identity)
        self._dms[_who(person)] = identity
        extra = {"delivery_id": message.delivery_id, "slack_user_id": user_id, "channel": channel}
        log.info("slack DM found and remembered", extra=extra)
        return identity

    def _stale(
        self, message: Message, person: Recipient, refused: _Refused, used_memory: bool
    ) -> TransportError:
        """What a refusal in ``_STALE`` means: a remembered identity to forget and find again
        (once: the retry remembers nothing), a typed-in id to correct, or a plain failure."""
        if used_memory:
            self._identities.forget(person)
            self._dms.pop(_who(person), None)
            extra = {"delivery_id": message.delivery_id, "slack_error": refused.code}
            log.warning("remembered slack identity refused; forgotten", extra=extra)
            return TransientError(
                f"{refused}: the remembered Slack identity was forgotten; the retry looks the "
                "person up again",
                retry_after=0.0,
            )
        if person.slack_user_id:
            return PermanentError(
                f"{refused}: Slack refuses the member id typed in for this person "
                f"({person.slack_user_id}); correct it, or clear it to look them up by email"
            )
        return refused.error

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
            raise _refused_or(method, exc) from None  # its text repeats Slack's whole answer
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


def _who(person: Recipient) -> str:
    return email_of(person) or person.slack_user_id


def _refused_or(method: str, error: SlackApiError) -> Exception:
    outcome = classify(method, error)
    data = error.response.data if isinstance(error.response.data, dict) else {}
    code = data.get("error")
    if isinstance(code, str) and code in _STALE and isinstance(outcome, PermanentError):
        return _Refused(method, code, outcome)
    return outcome
