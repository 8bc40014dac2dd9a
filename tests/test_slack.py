"""The Slack transport against a loopback Slack Web API (tests/slack_server.py).

No database: these tests drive the transport directly, the way dispatch does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.http_retry import (
    ConnectionErrorRetryHandler,
    FixedValueRetryIntervalCalculator,
    default_retry_handlers,
)

from bulletin import conf
from bulletin.channels.base import (
    AmbiguousError,
    Destination,
    Message,
    PermanentError,
    Recipient,
    TransientError,
    Transport,
    TransportError,
)
from bulletin.channels.slack import SlackTransport
from tests.slack_server import SlackServer

TOKEN = "xoxb-1234-secret-token-never-shown"
ADA = Recipient(email="ada@example.com", name="Ada Lovelace", timezone="Europe/London")
GRACE = Recipient(
    email="grace@example.com", name="Grace Hopper", timezone="UTC", slack_user_id="U0GRACE"
)
GENERAL = Destination(name="#general", target="C0GENERAL")


def message(
    *, to: Recipient | None = None, at: Destination | None = None, text: str = "Hello **all**"
) -> Message:
    return Message(
        idempotency_key="key-1",
        title="Office closed Friday",
        text="",
        html="",
        body=text,
        recipient=to,
        place=at,
    )


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[SlackServer]:
    users = {ADA.email: "U0ADA", GRACE.email: "U0GRACE"}
    with SlackServer(token=TOKEN, users=users) as server:
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
        monkeypatch.delenv("SLACK_BOT_TOKEN_FILE", raising=False)
        settings.BULLETIN = replace(conf.load({}), slack_api_url=server.url, slack_timeout=2.0)
        yield server


@pytest.fixture
def transport(slack: SlackServer) -> Iterator[SlackTransport]:
    opened = SlackTransport()
    opened.open()
    yield opened
    opened.close()


def failure(transport: Transport, msg: Message) -> TransportError:
    with pytest.raises(TransportError) as raised:
        transport.send(msg)
    return raised.value


# --- sending -------------------------------------------------------------------------------


def test_a_post_to_a_channel_carries_blocks_a_fallback_and_the_bot_token(
    slack: SlackServer, transport: SlackTransport
) -> None:
    transport.send(message(at=GENERAL, text="Hello **all**, see [the plan](https://x.test/p)."))
    [call] = slack.calls()
    assert call.method == "chat.postMessage"
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    assert call.params["channel"] == "C0GENERAL"
    header, body = call.blocks
    assert header["text"] == {"type": "plain_text", "text": "Office closed Friday", "emoji": True}
    assert body["elements"][0]["elements"] == [
        {"type": "text", "text": "Hello "},
        {"type": "text", "text": "all", "style": {"bold": True}},
        {"type": "text", "text": ", see "},
        {"type": "link", "text": "the plan", "url": "https://x.test/p"},
        {"type": "text", "text": "."},
    ]
    assert (
        call.params["text"] == "Office closed Friday\n\nHello all, see the plan (https://x.test/p)."
    )


def test_a_person_with_a_stored_slack_id_is_messaged_without_a_lookup(
    slack: SlackServer, transport: SlackTransport
) -> None:
    transport.send(message(to=GRACE))
    assert slack.methods == ["conversations.open", "chat.postMessage"]
    assert slack.calls("conversations.open")[0].params["users"] == "U0GRACE"
    assert slack.calls("chat.postMessage")[0].params["channel"] == "D0GRACE"


def test_a_person_is_looked_up_by_email_then_messaged_in_their_dm(
    slack: SlackServer, transport: SlackTransport
) -> None:
    transport.send(message(to=ADA))
    assert slack.methods == ["users.lookupByEmail", "conversations.open", "chat.postMessage"]
    lookup, opened, posted = slack.calls()
    assert lookup.params == {"email": "ada@example.com"}
    assert opened.params["users"] == "U0ADA"
    assert posted.params["channel"] == "D0ADA"


def test_two_messages_to_one_person_in_a_batch_look_them_up_once(
    slack: SlackServer, transport: SlackTransport
) -> None:
    transport.send(message(to=ADA))
    transport.send(message(to=ADA, text="And again"))
    assert slack.methods.count("users.lookupByEmail") == 1
    assert slack.methods.count("conversations.open") == 1
    assert slack.methods.count("chat.postMessage") == 2


def test_a_new_batch_forgets_the_dm_cache(slack: SlackServer) -> None:
    for _ in range(2):
        with SlackTransport() as transport:
            transport.send(message(to=ADA))  # send opens the batch by itself
    assert slack.methods.count("users.lookupByEmail") == 2


def test_a_token_from_a_file_is_used(
    slack: SlackServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    monkeypatch.setenv("SLACK_BOT_TOKEN_FILE", str(path))
    SlackTransport().send(message(at=GENERAL))
    assert slack.calls()[0].bearer == TOKEN


# --- failures ------------------------------------------------------------------------------

PERMANENT = [
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "msg_too_long",
    "no_text",
    "restricted_action",
    "invalid_blocks",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "missing_scope",
    "a_code_slack_adds_next_year",
]


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        *((code, PermanentError) for code in PERMANENT),
        ("internal_error", AmbiguousError),  # "possible some aspect of the operation succeeded"
        ("fatal_error", AmbiguousError),
        ("service_unavailable", TransientError),
        ("request_timeout", TransientError),  # "POST data was either missing or truncated"
        ("team_added_to_org", TransientError),
        ("rate_limited", TransientError),
    ],
)
def test_each_chat_post_message_error_code_has_its_outcome(
    slack: SlackServer, transport: SlackTransport, code: str, outcome: type[Exception]
) -> None:
    slack.fail("chat.postMessage", code)
    error = failure(transport, message(at=GENERAL))
    assert type(error) is outcome
    assert code in str(error)


@pytest.mark.parametrize(
    ("method", "code", "outcome"),
    [
        ("users.lookupByEmail", "users_not_found", PermanentError),
        ("users.lookupByEmail", "invalid_auth", PermanentError),
        ("users.lookupByEmail", "internal_error", TransientError),  # nothing posted yet
        ("users.lookupByEmail", "fatal_error", TransientError),
        ("users.lookupByEmail", "request_timeout", TransientError),
        ("conversations.open", "user_not_found", PermanentError),
        ("conversations.open", "user_disabled", PermanentError),
        ("conversations.open", "cannot_dm_bot", PermanentError),
        ("conversations.open", "missing_scope", PermanentError),
        ("conversations.open", "internal_error", TransientError),
        ("conversations.open", "service_unavailable", TransientError),
    ],
)
def test_errors_before_posting_are_never_ambiguous_and_post_nothing(
    slack: SlackServer,
    transport: SlackTransport,
    method: str,
    code: str,
    outcome: type[Exception],
) -> None:
    slack.fail(method, code)
    assert type(failure(transport, message(to=ADA))) is outcome
    assert slack.calls("chat.postMessage") == []


def test_an_unknown_email_is_a_permanent_failure(slack: SlackServer) -> None:
    stranger = Recipient(email="nobody@example.com", name="No Body", timezone="UTC")
    error = failure(SlackTransport(), message(to=stranger))
    assert isinstance(error, PermanentError) and "users_not_found" in str(error)


def test_a_wrong_token_is_refused_by_slack_and_is_permanent(
    slack: SlackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-wrong")
    error = failure(SlackTransport(), message(at=GENERAL))
    assert isinstance(error, PermanentError) and "invalid_auth" in str(error)


@pytest.mark.parametrize("method", ["chat.postMessage", "users.lookupByEmail"])
def test_a_429_is_transient_with_slacks_retry_after_and_a_pace_key(
    slack: SlackServer, transport: SlackTransport, method: str
) -> None:
    slack.rate_limit(method, retry_after=7)
    error = failure(transport, message(to=ADA))
    assert isinstance(error, TransientError)
    assert (error.retry_after, error.pace_key) == (7, f"slack:{method}")
    assert len(slack.calls(method)) == 1  # not retried behind dispatch's back


def test_every_rate_limit_pace_key_is_one_that_paces_consults(transport: SlackTransport) -> None:
    # pacing.book only looks at the keys paces() names: a hold on any other key is lost.
    keys = {key for key, _ in transport.paces(message(to=ADA))}
    keys |= {key for key, _ in transport.paces(message(at=GENERAL))}
    for method in ("chat.postMessage", "users.lookupByEmail", "conversations.open"):
        assert f"slack:{method}" in keys


@pytest.mark.parametrize(
    ("method", "status", "body", "outcome"),
    [
        ("chat.postMessage", 200, b'{"ok": true, "channel": "C0', AmbiguousError),
        ("chat.postMessage", 200, b"<html><body>Bad gateway</body></html>", AmbiguousError),
        ("chat.postMessage", 200, b'{"channel": "C0GENERAL"}', AmbiguousError),  # no "ok"
        ("chat.postMessage", 200, b"[1, 2]", AmbiguousError),
        ("chat.postMessage", 200, b"\xff\xfe not utf-8", AmbiguousError),
        ("chat.postMessage", 500, b"<html>500</html>", AmbiguousError),
        ("chat.postMessage", 502, b"<html>502</html>", AmbiguousError),
        ("chat.postMessage", 500, b'{"ok": false, "error": "internal_error"}', AmbiguousError),
        ("chat.postMessage", 503, b'{"ok": false, "error": "service_unavailable"}', TransientError),
        ("chat.postMessage", 404, b"<html>Not Found</html>", PermanentError),
        ("users.lookupByEmail", 200, b"<html>oops</html>", TransientError),
        ("users.lookupByEmail", 200, b'{"ok": true}', TransientError),  # no user id
        ("users.lookupByEmail", 500, b"<html>500</html>", TransientError),
        ("conversations.open", 200, b'{"ok": true, "channel": {}}', TransientError),
        ("conversations.open", 503, b"<html>503</html>", TransientError),
    ],
)
def test_an_unreadable_answer_is_ambiguous_only_from_chat_post_message(
    slack: SlackServer,
    transport: SlackTransport,
    method: str,
    status: int,
    body: bytes,
    outcome: type[Exception],
) -> None:
    slack.status(method, status, body)
    assert type(failure(transport, message(to=ADA))) is outcome


def test_a_timeout_while_posting_is_ambiguous(slack: SlackServer, settings: Any) -> None:
    settings.BULLETIN = replace(settings.BULLETIN, slack_timeout=0.3)
    slack.delay("chat.postMessage", 2.0)
    error = failure(SlackTransport(), message(at=GENERAL))
    assert isinstance(error, AmbiguousError)
    assert len(slack.calls("chat.postMessage")) == 1


def test_a_timeout_while_looking_up_is_transient_and_posts_nothing(
    slack: SlackServer, settings: Any
) -> None:
    settings.BULLETIN = replace(settings.BULLETIN, slack_timeout=0.3)
    slack.delay("users.lookupByEmail", 2.0)
    assert type(failure(SlackTransport(), message(to=ADA))) is TransientError
    assert slack.methods == ["users.lookupByEmail"]


def test_a_refused_connection_is_transient(slack: SlackServer) -> None:
    slack.close()  # the port no longer listens: nothing can have been sent
    error = failure(SlackTransport(), message(at=GENERAL))
    assert type(error) is TransientError
    assert "cannot reach Slack" in str(error)


def test_a_connection_reset_while_posting_is_ambiguous_and_sent_exactly_once(
    slack: SlackServer, transport: SlackTransport
) -> None:
    slack.reset("chat.postMessage")
    assert type(failure(transport, message(at=GENERAL))) is AmbiguousError
    assert len(slack.calls("chat.postMessage")) == 1
    assert SlackTransport.deduplicates is False  # so dispatch marks it unknown, not resent


def test_slack_sdks_default_retry_handler_would_have_posted_twice(slack: SlackServer) -> None:
    # Why the transport passes retry_handlers=[]: the SDK's default resends after a reset.
    [default] = default_retry_handlers()
    assert isinstance(default, ConnectionErrorRetryHandler)
    no_wait = ConnectionErrorRetryHandler(interval_calculator=FixedValueRetryIntervalCalculator(0))
    slack.reset("chat.postMessage")
    client = WebClient(token=TOKEN, base_url=slack.url, timeout=2, retry_handlers=[no_wait])
    client.chat_postMessage(channel="C0GENERAL", text="hi")
    assert len(slack.calls("chat.postMessage")) == 2


def test_no_token_is_a_permanent_error_and_no_request_is_made(
    slack: SlackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    error = failure(SlackTransport(), message(at=GENERAL))
    assert isinstance(error, PermanentError)
    assert str(error) == "SLACK_BOT_TOKEN is not set"
    assert slack.calls() == []


def test_the_token_never_appears_in_an_error_or_a_log(
    slack: SlackServer, caplog: pytest.LogCaptureFixture, settings: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    settings.BULLETIN = replace(settings.BULLETIN, slack_timeout=0.3)
    slack.fail("chat.postMessage", "invalid_auth")
    slack.fail("chat.postMessage", "some_new_code")
    slack.rate_limit("chat.postMessage", retry_after=1)
    slack.status("chat.postMessage", 500)
    slack.malformed("chat.postMessage")
    slack.reset("chat.postMessage")
    slack.delay("chat.postMessage", 1.0)
    errors = [failure(SlackTransport(), message(at=GENERAL)) for _ in range(7)]
    slack.close()
    errors.append(failure(SlackTransport(), message(at=GENERAL)))
    for error in errors:
        chain = [error, error.__cause__, error.__context__]
        assert not any(TOKEN in f"{link!s} {link!r}" for link in chain if link is not None)
    assert TOKEN not in caplog.text
    assert "unrecognised Slack error code" in caplog.text


def test_a_held_post_is_recorded_on_arrival_and_answered_on_release(
    slack: SlackServer, transport: SlackTransport
) -> None:
    hold = slack.hold("chat.postMessage")
    outcome: list[BaseException | None] = []

    def send() -> None:
        try:
            transport.send(message(at=GENERAL))
            outcome.append(None)
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    assert hold.wait(timeout=5).params["channel"] == "C0GENERAL"
    assert outcome == []  # still waiting for its answer
    hold.release()
    sender.join(timeout=5)
    assert outcome == [None]


# --- the message ---------------------------------------------------------------------------
# Its rendering and limits are tested in tests/test_markup.py; here, that Slack takes them.


def test_a_message_with_neither_title_nor_body_is_refused_before_any_request(
    slack: SlackServer,
) -> None:
    empty = Message(idempotency_key="k", title=" ", text="", html="", place=GENERAL)
    assert isinstance(failure(SlackTransport(), empty), PermanentError)
    assert slack.calls() == []


# --- pacing --------------------------------------------------------------------------------


def test_a_channel_post_is_paced_per_channel_and_per_workspace(
    settings: Any,
) -> None:
    settings.BULLETIN = conf.load({})
    paces = dict(SlackTransport().paces(message(at=GENERAL)))
    assert paces["slack:channel:C0GENERAL"] == 1.0
    assert paces["slack:workspace"] == pytest.approx(0.6)
    assert "slack:users.lookupByEmail" not in paces


def test_a_person_is_paced_by_email_and_the_workspace_budget_is_configurable(
    settings: Any,
) -> None:
    settings.BULLETIN = replace(settings.BULLETIN, slack_per_minute=30.0)
    paces = dict(SlackTransport().paces(message(to=ADA)))
    assert paces["slack:user:ada@example.com"] == 1.0
    assert paces["slack:workspace"] == 2.0
    assert "slack:users.lookupByEmail" in paces
    assert "slack:users.lookupByEmail" not in dict(SlackTransport().paces(message(to=GRACE)))
