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
too). The card itself, and how it stays within Teams' 28 KB, is
:mod:`bulletin.channels.teams_card`.

The URL's ``sig=`` parameter is its password: keys use a digest, logs a redacted form, and no
error message contains the URL.
"""

from __future__ import annotations

import json
import re

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
from bulletin.channels.teams_card import PAYLOAD_LIMIT, teams_card
from bulletin.conf import options

THROTTLE_SECONDS = 15.0

_FAILURE_TEXT = re.compile(r"delivery failed|returned HTTP error", re.IGNORECASE)
_EMBEDDED_STATUS = re.compile(r"returned HTTP error (\d{3})", re.IGNORECASE)


def pace_key(url: str) -> str:
    """The webhook's throttling key: a digest of host and path, never the signed URL."""
    return f"teams:{url_digest(url, with_query=False)}"


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
    reads_parts = False  # lays out the Markdown body itself (see Transport)
    service = "Teams"

    def paces(self, message: Message) -> list[tuple[str, float]]:
        if message.place is None:
            return []  # send() reports it
        return [
            (
                pace_key(message.place.target),
                interval(options().teams_per_second),
            )
        ]

    def send(self, message: Message) -> None:
        url = message.destination.target
        card = teams_card(message)  # cut to fit, so length alone never fails a post
        content = json.dumps(card.payload, ensure_ascii=False, separators=(",", ":"))
        if len(content.encode("utf-8")) > PAYLOAD_LIMIT:  # a bug in the fitting: say so
            raise PermanentError(f"the Teams card is {card.size} bytes, over {PAYLOAD_LIMIT}")
        answer = self.post(url, content.encode("utf-8"), {"Content-Type": "application/json"})
        key = pace_key(url)
        error = status_error(
            answer, service="Teams", pace_key=key, url=url, throttle_default=THROTTLE_SECONDS
        ) or _reported_failure(answer, key=key, url=url)
        if error is not None:
            raise error
