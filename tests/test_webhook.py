"""The signed webhook channel against a real HTTP server on loopback, verified on the receiving
side with the Standard Webhooks library, as an endpoint's owner would."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bulletin import conf
from bulletin.channels import webhook as webhook_module
from bulletin.channels.base import (
    AmbiguousError,
    Destination,
    Message,
    PermanentError,
    Recipient,
    TransientError,
    TransportError,
)
from bulletin.channels.webhook import WebhookTransport, pace_key
from tests.http_receiver import HttpReceiver, Reply, Request, closed_url


def secret(seed: str) -> str:
    return "whsec_" + base64.b64encode(seed.encode() * 4).decode()


CURRENT = secret("current-")
PREVIOUS = secret("previous")
STRANGER = secret("stranger")
KEY = "41.7.p3.webhook"
ADA = Recipient(email="ada@example.com", name="Ada Lovelace", timezone="Europe/London")


@pytest.fixture(autouse=True)
def short_timeout(settings: Any) -> None:
    settings.BULLETIN = replace(conf.load({}), http_timeout=2.0)


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver(default=Reply(204)) as server:
        yield server


@pytest.fixture
def webhook() -> Iterator[WebhookTransport]:
    transport = WebhookTransport()
    yield transport
    transport.close()


def message(
    url: str,
    secrets: tuple[str, ...] = (CURRENT,),
    recipient: Recipient | None = None,
    text: str = "The office is **closed** on Friday.",
) -> Message:
    return Message(
        idempotency_key=KEY,
        title="Office closed Friday",
        text="unused by webhooks",
        html="<p>The office is <strong>closed</strong> on Friday.</p>",
        body=text,
        recipient=recipient,
        place=Destination(name="HR system", target=url, secrets=secrets),
        announcement_id=7,
        fire_at=datetime(2025, 3, 28, 8, tzinfo=UTC),
    )


def failure(webhook: WebhookTransport, msg: Message) -> TransportError:
    with pytest.raises(TransportError) as caught:
        webhook.send(msg)
    return caught.value


def verify(secret: str, request: Request) -> Any:
    return Webhook(secret).verify(request.body, request.headers)


def test_a_place_gets_the_documented_body_with_standard_webhook_headers(
    receiver: HttpReceiver, webhook: WebhookTransport
) -> None:
    before = int(time.time())
    webhook.send(message(receiver.url("/hooks/bulletin")))
    after = int(time.time())
    [request] = receiver.requests
    assert request.method == "POST" and request.path == "/hooks/bulletin"
    headers = request.headers
    assert headers["webhook-id"] == KEY and headers["idempotency-key"] == KEY
    assert before <= int(headers["webhook-timestamp"]) <= after
    assert headers["webhook-signature"].startswith("v1,")
    assert len(headers["webhook-signature"].split(" ")) == 1
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "Bulletin"
    assert request.json() == {
        "type": "announcement.delivered",
        "id": KEY,
        "announcement": {"id": 7, "title": "Office closed Friday"},
        "occurrence": {"fire_at": "2025-03-28T08:00:00Z"},
        "recipient": None,
        "place": "HR system",
        "text": "The office is **closed** on Friday.",
        "html": "<p>The office is <strong>closed</strong> on Friday.</p>",
    }


def test_the_receiver_verifies_the_signature_over_the_exact_bytes_sent(
    receiver: HttpReceiver, webhook: WebhookTransport
) -> None:
    webhook.send(message(receiver.url("/hook"), text="Café ☕ — {{ name }}"))
    [request] = receiver.requests
    assert verify(CURRENT, request)["text"] == "Café ☕ — everyone"  # a place: no one person
    with pytest.raises(WebhookVerificationError):
        verify(STRANGER, request)
    tampered = Request(request.method, request.target, request.headers, request.body + b" ")
    with pytest.raises(WebhookVerificationError):
        verify(CURRENT, tampered)


def test_during_a_rotation_both_secrets_sign_and_either_one_verifies(
    receiver: HttpReceiver, webhook: WebhookTransport
) -> None:
    webhook.send(message(receiver.url("/hook"), secrets=(CURRENT, PREVIOUS)))
    [request] = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verify(CURRENT, request)["id"] == KEY
    assert verify(PREVIOUS, request)["id"] == KEY
    with pytest.raises(WebhookVerificationError):
        verify(STRANGER, request)


def test_a_receiver_still_holding_only_the_old_secret_accepts_during_a_rotation(
    receiver: HttpReceiver, webhook: WebhookTransport
) -> None:
    def old_receiver(request: Request) -> Reply:
        try:
            verify(PREVIOUS, request)
        except WebhookVerificationError:
            return Reply(401, "bad signature")
        return Reply(200)

    receiver.default = old_receiver
    webhook.send(message(receiver.url("/hook"), secrets=(CURRENT, PREVIOUS)))
    error = failure(webhook, message(receiver.url("/hook"), secrets=(CURRENT,)))
    assert type(error) is PermanentError and "401" in str(error)


def test_two_attempts_keep_the_webhook_id_and_sign_each_with_a_fresh_timestamp(
    receiver: HttpReceiver, webhook: WebhookTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    clock = iter([now - 90, now - 30])
    monkeypatch.setattr(webhook_module, "time", SimpleNamespace(time=lambda: next(clock)))
    receiver.script(Reply(503, "busy"), Reply(200))
    msg = message(receiver.url("/hook"))
    assert type(failure(webhook, msg)) is TransientError
    webhook.send(msg)
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == KEY
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"] == KEY
    assert int(second.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"]) == 60
    assert first.body == second.body
    assert verify(CURRENT, first) == verify(CURRENT, second)


def test_a_per_person_call_names_its_recipient(
    receiver: HttpReceiver, webhook: WebhookTransport
) -> None:
    webhook.send(message(receiver.url("/people"), recipient=ADA))
    [request] = receiver.requests
    payload = verify(CURRENT, request)
    assert payload["recipient"] == {"email": "ada@example.com", "name": "Ada Lovelace"}
    assert payload["place"] == "HR system"


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_is_delivered(
    receiver: HttpReceiver, webhook: WebhookTransport, status: int
) -> None:
    receiver.script(Reply(status, "" if status == 204 else "ok"))
    webhook.send(message(receiver.url("/hook")))  # raising here would mean "not delivered"
    [request] = receiver.requests  # once: a 2xx is not retried, redirected or re-sent
    assert verify(CURRENT, request)["id"] == KEY


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (Reply(410, "gone"), PermanentError),
        (Reply.json(400, {"error": "unknown field"}), PermanentError),
        (Reply(401), PermanentError),
        (Reply(404), PermanentError),
        (Reply(422), PermanentError),
        (Reply(301, headers={"Location": "https://elsewhere.example/hook"}), PermanentError),
        (Reply(408), TransientError),
        (Reply(409), TransientError),
        (Reply(425), TransientError),
        (Reply(500), TransientError),
        (Reply(502), TransientError),
        (Reply(503), TransientError),
    ],
    ids=lambda value: str(value.status) if isinstance(value, Reply) else "",
)
def test_status_codes_decide_between_permanent_and_transient(
    receiver: HttpReceiver,
    webhook: WebhookTransport,
    reply: Reply,
    expected: type[TransportError],
) -> None:
    receiver.script(reply)
    error = failure(webhook, message(receiver.url("/hook")))
    assert type(error) is expected
    assert f"HTTP {reply.status}" in str(error)


@pytest.mark.parametrize(
    "reply", [Reply.rate_limited("7"), Reply(503, headers={"Retry-After": "7"})]
)
def test_a_429_or_a_503_with_retry_after_holds_the_endpoint(
    receiver: HttpReceiver, webhook: WebhookTransport, reply: Reply
) -> None:
    url = receiver.url("/hook/t0ken-in-the-path-0123456789")
    receiver.script(reply)
    error = failure(webhook, message(url))
    assert isinstance(error, TransientError)
    assert error.retry_after == 7.0
    assert error.pace_key == pace_key(url)
    assert "t0ken" not in error.pace_key


def test_no_answer_in_time_is_ambiguous_and_the_resend_carries_the_same_webhook_id(
    receiver: HttpReceiver, webhook: WebhookTransport, settings: Any
) -> None:
    settings.BULLETIN = replace(settings.BULLETIN, http_timeout=0.3)
    receiver.script(Reply(200, delay=2), Reply(200))
    msg = message(receiver.url("/hook"))
    assert type(failure(webhook, msg)) is AmbiguousError
    webhook.send(msg)
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == KEY
    assert WebhookTransport.deduplicates is True and WebhookTransport.name == "webhook"


@pytest.mark.parametrize("reply", [Reply.slam(), Reply.slam(reset=True), Reply.garbage()])
def test_a_connection_dropped_after_sending_is_ambiguous(
    receiver: HttpReceiver, webhook: WebhookTransport, reply: Reply
) -> None:
    receiver.script(reply)
    assert type(failure(webhook, message(receiver.url("/hook")))) is AmbiguousError
    assert len(receiver.requests) == 1


def test_a_refused_connection_is_transient(webhook: WebhookTransport) -> None:
    assert type(failure(webhook, message(closed_url("/hook")))) is TransientError


@pytest.mark.parametrize("secrets", [(), ("",), ("  ",)])
def test_a_place_without_a_secret_is_refused_without_sending(
    receiver: HttpReceiver, webhook: WebhookTransport, secrets: tuple[str, ...]
) -> None:
    error = failure(webhook, message(receiver.url("/hook"), secrets=secrets))
    assert type(error) is PermanentError
    assert str(error) == "webhook place has no signing secret"
    assert receiver.requests == []


def test_an_unusable_secret_is_refused_without_sending_or_echoing_it(
    receiver: HttpReceiver, webhook: WebhookTransport
) -> None:
    error = failure(webhook, message(receiver.url("/hook"), secrets=(CURRENT, "whsec_x")))
    assert type(error) is PermanentError and "previous signing secret" in str(error)
    assert "whsec_x" not in str(error) and CURRENT not in str(error)
    assert receiver.requests == []


def test_secrets_never_appear_in_error_messages(
    receiver: HttpReceiver, webhook: WebhookTransport
) -> None:
    bare = CURRENT.removeprefix("whsec_")
    url = receiver.url("/hook/t0ken-in-the-path-0123456789?key=query-secret-value")
    replies = [
        Reply(400, f"your secret {CURRENT} is wrong"),
        Reply.json(401, {"error": {"code": "bad_secret", "message": f"got {bare}"}}),
        Reply(500, f"failed at {url}"),
        Reply.rate_limited("1", f"slow down {PREVIOUS}"),
        Reply(422, "x" * 280 + CURRENT),  # where the quoted answer is cut short
        Reply.slam(),
    ]
    receiver.script(*replies)
    texts = [str(failure(webhook, message(url, secrets=(CURRENT, PREVIOUS)))) for _ in replies]
    assert "secret" in texts[0]  # the answer is quoted, with the secret blanked
    for text in texts:
        for hidden in (bare[:8], PREVIOUS, "query-secret-value", "t0ken-in-the-path"):
            assert hidden not in text, text


def test_each_endpoint_is_paced_under_its_own_key_at_the_configured_rate(
    webhook: WebhookTransport, settings: Any
) -> None:
    [(key, interval)] = webhook.paces(message("https://hooks.example.com/a?token=abc"))
    assert (key, interval) == (pace_key("https://hooks.example.com/a?token=abc"), 0.05)
    assert key.startswith("webhook:") and "abc" not in key and "example" not in key
    assert webhook.paces(message("https://hooks.example.com/b"))[0][0] != key
    settings.BULLETIN = replace(settings.BULLETIN, webhook_per_second=10.0)
    assert webhook.paces(message("https://hooks.example.com/a"))[0][1] == 0.1
    person_only = Message(idempotency_key="k", title="t", text="x", html="x", recipient=ADA)
    assert webhook.paces(person_only) == []
    assert type(failure(webhook, person_only)) is PermanentError
