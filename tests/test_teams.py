"""The Teams channel against a real HTTP server on loopback speaking like a Workflows webhook
(202, empty body) and like the retired connectors (200 with the error in the body)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from bulletin import conf
from bulletin.channels.base import (
    AmbiguousError,
    Destination,
    Message,
    PermanentError,
    Recipient,
    TransientError,
    TransportError,
)
from bulletin.channels.teams import THROTTLE_SECONDS, TeamsTransport, pace_key
from bulletin.channels.teams_card import PAYLOAD_LIMIT
from tests.http_receiver import HttpReceiver, Reply, closed_url

SIG = "Zm9vYmFyc2VjcmV0c2lnbmF0dXJl0123"
WORKFLOW = "/workflows/0f8fad5bd9cb469fa16570867728950e/triggers/manual/paths/invoke"
QUERY = f"?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SIG}"
BODY = "Hello team,\n\nThe office is **closed** on *Friday*.\n\n- bring laptops\n- lock up"


@pytest.fixture(autouse=True)
def short_timeout(settings: Any) -> None:
    settings.BULLETIN = replace(conf.load({}), http_timeout=2.0)


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver(default=Reply.teams_accepted()) as server:
        yield server


@pytest.fixture
def teams() -> Iterator[TeamsTransport]:
    transport = TeamsTransport()
    yield transport
    transport.close()


def workflow_url(receiver: HttpReceiver) -> str:
    return receiver.url(WORKFLOW + QUERY)


def message(url: str, text: str = BODY, title: str = "Office closed Friday") -> Message:
    return Message(
        idempotency_key="41.p3.teams",
        title=title,
        text="unused by Teams",
        html="<p>unused by Teams</p>",
        body=text,
        web_url="https://bulletin.example.com/announcements/41/",
        place=Destination(name="All hands", target=url),
        announcement_id=7,
        fire_at=datetime(2025, 3, 28, 8, tzinfo=UTC),
    )


def failure(teams: TeamsTransport, msg: Message) -> TransportError:
    with pytest.raises(TransportError) as caught:
        teams.send(msg)
    return caught.value


def test_a_card_is_posted_as_a_teams_message_with_one_adaptive_card_attachment(
    receiver: HttpReceiver, teams: TeamsTransport
) -> None:
    teams.send(message(workflow_url(receiver)))
    [request] = receiver.requests
    assert request.method == "POST" and request.path == WORKFLOW
    assert request.query["sig"] == [SIG]
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "Bulletin"
    payload = request.json()
    assert payload["type"] == "message"
    [attachment] = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    title, *body = card["body"]
    assert title == {
        "type": "RichTextBlock",
        "inlines": [
            {
                "type": "TextRun",
                "text": "Office closed Friday",
                "weight": "Bolder",
                "size": "Medium",
            }
        ],
    }
    texts = ["".join(run["text"] for run in block["inlines"]) for block in body]
    assert texts == [
        "Hello team,",
        "The office is closed on Friday.",
        "• bring laptops",
        "• lock up",
    ]
    assert all(block["type"] == "RichTextBlock" for block in body)
    assert "actions" not in card  # nothing was cut


def test_a_202_with_an_empty_body_is_success(receiver: HttpReceiver, teams: TeamsTransport) -> None:
    receiver.script(Reply(202), Reply(200, "1"))  # a workflow, then an old connector's "1"
    teams.send(message(workflow_url(receiver)))
    teams.send(message(workflow_url(receiver)))
    assert len(receiver.requests) == 2


def test_a_200_whose_body_reports_http_error_429_is_a_rate_limit_not_a_success(
    receiver: HttpReceiver, teams: TeamsTransport
) -> None:
    url = workflow_url(receiver)
    receiver.script(Reply.teams_error(429))
    error = failure(teams, message(url))
    assert isinstance(error, TransientError)
    assert error.pace_key == pace_key(url) and SIG not in error.pace_key
    assert error.retry_after == THROTTLE_SECONDS
    assert "429" in str(error)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (Reply.teams_error(404).body, PermanentError),
        (Reply.teams_error(400).body, PermanentError),
        (Reply.teams_error(413).body, PermanentError),
        (Reply.teams_error(502).body, TransientError),
        ("Webhook message delivery failed with error: Error contacting Teams", TransientError),
    ],
)
def test_a_2xx_whose_body_reports_another_error_is_judged_by_the_embedded_status(
    receiver: HttpReceiver, teams: TeamsTransport, body: str, expected: type[TransportError]
) -> None:
    receiver.script(Reply(200, body))
    error = failure(teams, message(workflow_url(receiver)))
    assert type(error) is expected
    assert "reported a failure" in str(error)


def test_a_429_with_retry_after_seconds_holds_the_webhooks_pace_key(
    receiver: HttpReceiver, teams: TeamsTransport
) -> None:
    url = workflow_url(receiver)
    receiver.script(Reply.rate_limited("7"))
    error = failure(teams, message(url))
    assert isinstance(error, TransientError)
    assert error.retry_after == 7.0
    assert error.pace_key == pace_key(url)
    assert error.pace_key.startswith("teams:") and SIG not in error.pace_key


def test_a_429_with_an_http_date_retry_after_waits_until_that_date(
    receiver: HttpReceiver, teams: TeamsTransport
) -> None:
    later = datetime.now(UTC) + timedelta(seconds=30)
    receiver.script(Reply.rate_limited(format_datetime(later, usegmt=True)))
    error = failure(teams, message(workflow_url(receiver)))
    assert isinstance(error, TransientError)
    assert error.retry_after is not None and 25 <= error.retry_after <= 31


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_is_transient(receiver: HttpReceiver, teams: TeamsTransport, status: int) -> None:
    receiver.script(Reply(status, "upstream trouble"))
    error = failure(teams, message(workflow_url(receiver)))
    assert type(error) is TransientError
    assert f"HTTP {status}" in str(error)


@pytest.mark.parametrize(
    "reply",
    [
        Reply.json(400, {"error": {"code": "InvalidRequestContent", "message": "bad card"}}),
        Reply(401),
        Reply(403),
        Reply.json(404, {"error": {"code": "WorkflowNotFound", "message": "gone"}}),
        Reply(410),
        Reply(413),
    ],
)
def test_a_4xx_is_permanent(receiver: HttpReceiver, teams: TeamsTransport, reply: Reply) -> None:
    receiver.script(reply)
    error = failure(teams, message(workflow_url(receiver)))
    assert type(error) is PermanentError
    assert f"HTTP {reply.status}" in str(error)
    if reply.status == 400:
        assert "InvalidRequestContent: bad card" in str(error)


def test_no_answer_in_time_after_the_request_was_sent_is_ambiguous(
    receiver: HttpReceiver, teams: TeamsTransport, settings: Any
) -> None:
    settings.BULLETIN = replace(settings.BULLETIN, http_timeout=0.3)
    receiver.script(Reply(202, delay=2))
    error = failure(teams, message(workflow_url(receiver)))
    assert type(error) is AmbiguousError
    assert len(receiver.requests) == 1  # it did reach Teams


def test_a_held_request_is_ambiguous_when_the_sender_gives_up(
    receiver: HttpReceiver, teams: TeamsTransport, settings: Any
) -> None:
    settings.BULLETIN = replace(settings.BULLETIN, http_timeout=0.3)
    receiver.script(Reply.hold())
    error = failure(teams, message(workflow_url(receiver)))
    assert type(error) is AmbiguousError
    assert [r.path for r in receiver.wait_held(1)] == [WORKFLOW]
    assert receiver.release() == 1


@pytest.mark.parametrize(
    "reply", [Reply.slam(), Reply.slam(reset=True), Reply.garbage()], ids=["fin", "rst", "junk"]
)
def test_a_connection_dropped_after_sending_is_ambiguous(
    receiver: HttpReceiver, teams: TeamsTransport, reply: Reply
) -> None:
    receiver.script(reply)
    error = failure(teams, message(workflow_url(receiver)))
    assert type(error) is AmbiguousError
    assert len(receiver.requests) == 1


def test_a_200_whose_body_is_cut_off_is_ambiguous(
    receiver: HttpReceiver, teams: TeamsTransport, settings: Any
) -> None:
    settings.BULLETIN = replace(settings.BULLETIN, http_timeout=0.3)
    receiver.script(Reply(200, "1", {"Content-Length": "400"}))
    assert type(failure(teams, message(workflow_url(receiver)))) is AmbiguousError


def test_a_refused_connection_is_transient(teams: TeamsTransport) -> None:
    error = failure(teams, message(closed_url(WORKFLOW + QUERY)))
    assert type(error) is TransientError
    assert error.retry_after is None


def test_the_signature_never_appears_in_errors_keys_or_logs(
    receiver: HttpReceiver, teams: TeamsTransport, caplog: pytest.LogCaptureFixture
) -> None:
    url = workflow_url(receiver)
    caplog.set_level(logging.DEBUG, logger="bulletin")
    replies = [
        Reply.teams_error(429),
        Reply(200, f"Webhook message delivery failed for {url}"),
        Reply.rate_limited("1"),
        Reply(500, f"could not run {QUERY}"),
        Reply.json(404, {"error": {"code": "NotFound", "message": f"no flow at {url}"}}),
        Reply.slam(),
    ]
    receiver.script(*replies)
    texts = [str(failure(teams, message(url))) for _ in replies]
    texts.append(str(failure(teams, message(closed_url(WORKFLOW + QUERY)))))
    texts.extend(key for key, _ in teams.paces(message(url)))
    texts.append(caplog.text)
    texts.extend(str(record.__dict__) for record in caplog.records)  # the extras too
    for text in texts:
        assert SIG not in text and "sig=" not in text, text
    endpoints = [getattr(record, "endpoint", "") for record in caplog.records]
    assert "posted" in caplog.text and any(WORKFLOW[:14] in e for e in endpoints)


def test_a_card_over_the_size_limit_is_cut_and_sent_with_a_link_to_the_rest(
    receiver: HttpReceiver, teams: TeamsTransport
) -> None:
    teams.send(message(workflow_url(receiver), text="word " * PAYLOAD_LIMIT))
    [request] = receiver.requests
    assert PAYLOAD_LIMIT - 200 < len(request.body) <= PAYLOAD_LIMIT
    [action] = request.json()["attachments"][0]["content"]["actions"]
    assert action == {
        "type": "Action.OpenUrl",
        "title": "Read the whole announcement",
        "url": "https://bulletin.example.com/announcements/41/",
    }


def test_a_message_to_a_person_only_is_permanent(teams: TeamsTransport) -> None:
    person = Recipient(email="ada@example.com", name="Ada Lovelace", timezone="UTC")
    lonely = Message(idempotency_key="1.2.teams", title="t", text="x", html="x", recipient=person)
    assert teams.paces(lonely) == []
    assert type(failure(teams, lonely)) is PermanentError


def test_a_malformed_url_is_permanent(teams: TeamsTransport) -> None:
    assert type(failure(teams, message("ftp://example.com/flow"))) is PermanentError
    assert type(failure(teams, message("not a url"))) is PermanentError


def test_each_webhook_url_is_paced_under_one_key_at_the_configured_rate(
    receiver: HttpReceiver, teams: TeamsTransport, settings: Any
) -> None:
    url = workflow_url(receiver)
    [(key, interval)] = teams.paces(message(url))
    assert (key, interval) == (pace_key(url), 0.25)
    resigned = url.replace(SIG, "another-signature-value")
    assert teams.paces(message(resigned))[0][0] == key  # same workflow, new signature
    other = receiver.url("/workflows/ffffffffffffffffffffffffffffffff/triggers" + QUERY)
    assert teams.paces(message(other))[0][0] != key
    settings.BULLETIN = replace(settings.BULLETIN, teams_per_second=2.0)
    assert teams.paces(message(url))[0][1] == 0.5


def test_one_client_serves_a_batch_and_the_transport_reopens_after_close(
    receiver: HttpReceiver, teams: TeamsTransport
) -> None:
    teams.open()
    teams.send(message(workflow_url(receiver)))
    teams.send(message(workflow_url(receiver)))
    teams.close()
    teams.close()  # idempotent
    teams.send(message(workflow_url(receiver)))  # opens again by itself
    assert len(receiver.requests) == 3
    assert TeamsTransport.name == "teams" and TeamsTransport.deduplicates is False
