"""Generic webhooks: a signed JSON POST per announcement, or per person, to an endpoint.

The place's target is the endpoint URL; its secrets sign each request the Standard Webhooks
way (https://www.standardwebhooks.com), so any receiver with a Standard Webhooks library can
check it. A place posts once per announcement; a per-person place posts once per recipient,
with ``recipient`` filled in.

Request
-------
``POST <target>`` with these headers:

- ``webhook-id``: the delivery's idempotency key. The same on every attempt of one delivery.
- ``webhook-timestamp``: integer Unix seconds of *this* attempt (receivers reject stale ones).
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256>`` of ``"{id}.{timestamp}.{body}"``, one per
  secret, space-separated: the current secret and, during a rotation, the previous one.
- ``Idempotency-Key``: the same key, for receivers that speak that header instead.
- ``Content-Type: application/json``, ``User-Agent: Bulletin``.

Body (UTF-8 JSON; fields are only ever added)::

    {
      "type": "announcement.delivered",
      "id": "<idempotency key, equal to webhook-id>",
      "announcement": {"id": 42, "title": "Office closed Friday"},
      "occurrence": {"fire_at": "2025-03-28T08:00:00Z"},      # UTC, or null
      "recipient": {"email": "ada@example.com", "name": "Ada Lovelace"},  # or null
      "place": "<the place's name>",
      "text": "<the announcement as Markdown, personal fields escaped as literal text>",
      "html": "<the same as sanitised HTML>"
    }

Outcomes
--------
2xx is delivered. 410 Gone and the other 4xx are permanent, except 408, 409, 425 and 429,
which are transient (429 and a 503 with Retry-After hold the endpoint's pace key,
``webhook:<digest of the URL>``, for the Retry-After); 5xx is transient. No answer in time or a
connection lost after sending is ``AmbiguousError``; because this channel de-duplicates,
dispatch resends it with the same ``webhook-id``. A place with no secret is refused before any
request (``PermanentError``). Pacing: ``BULLETIN_WEBHOOK_PER_SECOND`` (default 20) per endpoint.
Secrets never appear in logs or error messages; the URL only in redacted form in logs.

Receiving (for the endpoint's owner)
------------------------------------
Verify the signature over the exact body bytes, then drop repeats by ``webhook-id``: a
request Bulletin could not confirm is sent again with the same id::

    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    webhook = Webhook("whsec_…")           # the secret configured on the place

    def receive(body: bytes, headers: dict[str, str]) -> int:
        try:
            event = webhook.verify(body, headers)   # checks signature and 5-minute freshness
        except WebhookVerificationError:
            return 400
        if already_seen(headers["webhook-id"]):     # e.g. INSERT … ON CONFLICT DO NOTHING
            return 200                              # a resend: acknowledge, do nothing
        handle(event)
        return 200

To rotate a secret, set the new one on the place and keep the old one as its previous
secret: both sign every request, so receivers holding either keep verifying; drop the previous
one once every receiver has switched. Answer 2xx quickly (Bulletin waits
``BULLETIN_HTTP_TIMEOUT`` seconds) and do slow work after answering.
"""

from __future__ import annotations

import binascii
import json
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from bulletin.channels.base import Message, PermanentError
from bulletin.channels.http import HttpTransport, interval, status_error, url_digest
from bulletin.channels.render import render_markdown
from bulletin.conf import options

EVENT_TYPE = "announcement.delivered"


def pace_key(url: str) -> str:
    """The endpoint's throttling key: a digest of its URL, which may embed a token."""
    return f"webhook:{url_digest(url)}"


def _utc_iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    if when.tzinfo is None:  # Bulletin stores aware UTC; a naive value is taken as UTC
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def webhook_payload(message: Message) -> dict[str, Any]:
    recipient = message.recipient
    return {
        "type": EVENT_TYPE,
        "id": message.idempotency_key,
        "announcement": {"id": message.announcement_id, "title": message.title},
        "occurrence": {"fire_at": _utc_iso(message.fire_at)},
        "recipient": (
            {"email": recipient.email, "name": recipient.name} if recipient is not None else None
        ),
        "place": message.destination.name,
        "text": render_markdown(message.body, message.recipient),
        "html": message.html,
    }


def signers(secrets: Iterable[str]) -> list[Webhook]:
    """One signer per configured secret (duplicates and blanks dropped), current first."""
    unique = list(dict.fromkeys(s.strip() for s in secrets if s and s.strip()))
    if not unique:
        raise PermanentError("webhook place has no signing secret")
    result = []
    for position, secret in enumerate(unique, start=1):
        try:
            result.append(Webhook(secret))
        except (binascii.Error, ValueError, EmptyWebhookSecretError, RuntimeError):
            which = "current" if position == 1 else "previous"
            raise PermanentError(
                f"the webhook place's {which} signing secret is not valid "
                "(expected base64, optionally prefixed whsec_)"
            ) from None
    return result


def signed_headers(
    msg_id: str, payload: str, keys: list[Webhook], now: float | None = None
) -> dict[str, str]:
    """Standard Webhooks headers for ``payload`` (the exact text sent, UTF-8 encoded)."""
    seconds = int(time.time() if now is None else now)
    # The library formats the timestamp after `.replace(tzinfo=utc)`: hand it UTC already.
    timestamp = datetime.fromtimestamp(seconds, UTC)
    signatures = " ".join(key.sign(msg_id, timestamp, payload) for key in keys)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(seconds),
        "webhook-signature": signatures,
        "Idempotency-Key": msg_id,
        "Content-Type": "application/json",
    }


class WebhookTransport(HttpTransport):
    name = "webhook"
    deduplicates = True
    service = "the webhook"

    def paces(self, message: Message) -> list[tuple[str, float]]:
        if message.place is None:
            return []  # send() reports it
        return [
            (
                pace_key(message.place.target),
                interval(options().webhook_per_second),
            )
        ]

    def send(self, message: Message) -> None:
        place = message.destination
        keys = signers(place.secrets)
        payload = json.dumps(webhook_payload(message), ensure_ascii=False, separators=(",", ":"))
        # Signed just before sending, so the timestamp is this attempt's.
        headers = signed_headers(message.idempotency_key, payload, keys)
        hidden = [*place.secrets, *(s.strip().removeprefix("whsec_") for s in place.secrets)]
        answer = self.post(place.target, payload.encode("utf-8"), headers, secrets=hidden)
        error = status_error(
            answer,
            service="the webhook",
            pace_key=pace_key(place.target),
            url=place.target,
            secrets=hidden,
        )
        if error is not None:
            raise error
