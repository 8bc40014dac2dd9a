"""Bounces and complaints from mail providers, through django-anymail's tracking webhooks.

When Bulletin's SMTP relay is a provider (Amazon SES, SendGrid, Mailgun, Postmark, Brevo), the
provider — not a DSN in a mailbox — says what became of each message. Anymail's own views
receive and verify the provider's POST (HTTP basic auth with ``ANYMAIL["WEBHOOK_SECRET"]``
for all of them; Mailgun's HMAC signature with its webhook signing key; SendGrid's ECDSA
signature when its verification key is set) and send one normalised ``tracking`` signal per
event. :func:`on_tracking` turns the events that matter into a :class:`BounceReport` and hands
it, with the event's JSON, to :func:`bulletin.dispatch.bounces.record`:

- ``bounced``: permanent → HARD, temporary → SOFT. Anymail's normalisation does not always
  say which (SES's Transient and Postmark's SoftBounce are ``bounced`` too), so each
  provider's own field decides: :data:`_HARD_WHEN`.
- ``deferred`` → SOFT; ``complained`` → COMPLAINT; ``rejected`` → HARD only when the
  provider refused the address itself (a known bounce, an invalid address).
- Everything else (queued, delivered, opened, clicked, unsubscribed, autoresponded…) is
  ignored: those say nothing about whether the address works.

The delivery is found, as for a DSN, by a VERP key when the event carries the envelope sender
(SES's ``mail.source``, Mailgun's ``envelope.sender``), else by the Message-ID Bulletin wrote
when the provider echoes it (SES ``mail.commonHeaders.messageId``, SendGrid ``smtp-id``,
Mailgun ``message.headers.message-id``, Brevo ``message-id``, Postmark only through the
returned message in ``Content`` when "Include bounce content" is on). Otherwise the event is
kept ``unmatched`` for HR and fails nobody's delivery.

The views answer 200 once the events are recorded, matched or not (providers retry anything
else), 400 for a bad signature or a body that is not the provider's JSON, 401 to SNS without
credentials (it then retries with them), and 404 while the provider's credential is not
configured: an unauthenticated bounce endpoint would let anyone suppress anyone.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit
from urllib.request import urlopen

from anymail.exceptions import (
    AnymailAPIError,
    AnymailConfigurationError,
    AnymailNotSupportedWarning,
    AnymailWebhookValidationFailure,
)
from anymail.signals import AnymailTrackingEvent, EventType, RejectReason, tracking
from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView
from anymail.webhooks.base import AnymailBaseWebhookView
from anymail.webhooks.brevo import BrevoTrackingWebhookView
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from anymail.webhooks.sendgrid import SendGridTrackingWebhookView
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt

from bulletin.channels import bounce_parse, verp
from bulletin.channels.bounce_report import BounceKind, BounceReport
from bulletin.conf import options
from bulletin.dispatch import bounces

log = logging.getLogger(__name__)

# Anymail 15 no longer tests SendGrid against a live account and says so on every request
# (anymail issue 432); its SendGrid webhook code is unchanged and tested here.
warnings.filterwarnings(
    "ignore", category=AnymailNotSupportedWarning, module=r"anymail\.webhooks\.sendgrid"
)

# anymail's esp_name → the provider's name in URLs and in BounceReport.source.
PROVIDERS = {
    "Amazon SES": "amazon_ses",
    "SendGrid": "sendgrid",
    "Mailgun": "mailgun",
    "Postmark": "postmark",
    "Brevo": "brevo",
}
# RFC 3463 enhanced status codes, as servers quote them inside their words.
_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
DIAGNOSTIC_LONGEST = 1000
# Amazon SNS subscription confirmation: only its own HTTPS hosts (sns.<region>.amazonaws.com,
# .com.cn in China) are visited, so a forged SubscribeURL cannot make Bulletin fetch elsewhere.
_SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")
SNS_CONFIRM_SECONDS = 10


# --- the views ----------------------------------------------------------------------------------


class _AnswersBadBodies:
    """Anymail lets a body that is not the provider's JSON escape as a 500, which providers
    retry for days; it is the sender's mistake, so it is a 400, logged once."""

    esp_name: str

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().post(request, *args, **kwargs)  # type: ignore[misc]
        except (ValueError, KeyError, TypeError, AnymailAPIError, AnymailConfigurationError) as exc:
            log.warning(
                "bounce webhook refused: not the provider's event JSON",
                extra={"provider": self.esp_name, "error": str(exc)[:300]},
            )
            return HttpResponseBadRequest(f"not a {self.esp_name} tracking event: {exc!s:.200}")


class AmazonSesView(_AnswersBadBodies, AmazonSESTrackingWebhookView):
    """SES notifications through an SNS topic, without boto3: anymail would confirm the SNS
    subscription with boto3's ConfirmSubscription; visiting the SubscribeURL is the documented
    equivalent (docs.aws.amazon.com/sns/latest/dg/SendMessageToHttp.confirm.html: "send an
    HTTP GET request to the SubscribeURL")."""

    def __init__(self, **kwargs: Any) -> None:
        self.auto_confirm_enabled = True
        self.session_params: dict[str, Any] = {}
        self.client_params: dict[str, Any] = {}
        AnymailBaseWebhookView.__init__(self, **kwargs)

    def auto_confirm_sns_subscription(self, sns_message: dict[str, Any]) -> None:
        if not self.basic_auth:  # the secret proves the subscription is meant for us
            raise AnymailWebhookValidationFailure("SNS subscription without WEBHOOK_SECRET")
        confirm_sns_subscription(str(sns_message.get("SubscribeURL", "")))


def confirm_sns_subscription(url: str, opener: Callable[..., Any] = urlopen) -> None:
    """GET the SubscribeURL, if it is SNS's own HTTPS address; AnymailWebhookValidationFailure
    (a 400) otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not _SNS_HOST.fullmatch(parts.hostname or ""):
        raise AnymailWebhookValidationFailure(f"SubscribeURL {url[:200]!r} is not Amazon SNS's")
    with opener(url, timeout=SNS_CONFIRM_SECONDS) as answer:
        answer.read()
    log.info("Amazon SNS subscription confirmed", extra={"host": parts.hostname})


class SendGridView(_AnswersBadBodies, SendGridTrackingWebhookView):
    pass


class MailgunView(_AnswersBadBodies, MailgunTrackingWebhookView):
    pass


class PostmarkView(_AnswersBadBodies, PostmarkTrackingWebhookView):
    pass


class BrevoView(_AnswersBadBodies, BrevoTrackingWebhookView):
    pass


def _anymail(name: str) -> str:
    return str(getattr(settings, "ANYMAIL", {}).get(name) or "")


def _configured(provider: str) -> bool:
    """Whether the provider's credential is set: Mailgun's signing key; SendGrid's
    verification key or the shared secret; the shared basic-auth secret for the others."""
    if provider == "mailgun":
        return bool(_anymail("MAILGUN_WEBHOOK_SIGNING_KEY"))
    if provider == "sendgrid" and _anymail("SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY"):
        return True
    return bool(_anymail("WEBHOOK_SECRET"))


def endpoint(provider: str, view_class: type[AnymailBaseWebhookView]) -> Callable[..., Any]:
    """The view for ``provider``'s URL: 404 until its credential is configured."""
    view = view_class.as_view()

    @csrf_exempt
    def webhook(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not _configured(provider):
            raise Http404(f"the {provider} webhook is not configured")
        return view(request, *args, **kwargs)

    webhook.__name__ = f"{provider}_bounce_webhook"
    return webhook


# --- events → reports ---------------------------------------------------------------------------


def on_tracking(sender: Any, event: AnymailTrackingEvent, esp_name: str, **_: Any) -> None:
    """anymail's ``tracking`` signal: record the events that say something about an address."""
    provider = PROVIDERS.get(esp_name)
    if provider is None:
        return
    raw = _raw(esp_name, event)
    try:
        report = report_of(provider, event)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # A provider's event of a shape not foreseen: kept for HR rather than lost.
        note = f"{esp_name} event not understood: {exc!r}"[:500]
        report = BounceReport(BounceKind.UNREADABLE, f"webhook:{provider}", note=note)
    if report is None:
        log.debug("provider event ignored", extra={"provider": provider, "type": event.event_type})
        return
    done = bounces.record(raw, report)
    extra = {"provider": provider, "outcome": done.outcome, "bounce_id": done.bounce_id}
    log.info("provider event recorded", extra=extra | {"delivery_id": done.delivery_id})


tracking.connect(on_tracking, dispatch_uid="bulletin.bounce_webhooks")


def _raw(esp_name: str, event: AnymailTrackingEvent) -> bytes:
    """What is kept: the provider's own event, and which recipient of it this report is
    about (an SES bounce can name several, each recorded once)."""
    esp_event = event.esp_event
    if hasattr(esp_event, "lists"):  # Mailgun's legacy form posts: a QueryDict
        esp_event = dict(esp_event.lists())
    kept = {"provider": esp_name, "recipient": event.recipient, "event": esp_event}
    return json.dumps(kept, sort_keys=True, default=str).encode()


def report_of(provider: str, event: AnymailTrackingEvent) -> BounceReport | None:
    """The report an event makes, or None when it says nothing about the address."""
    kind = _kind(provider, event)
    if kind is None:
        return None
    esp = event.esp_event if isinstance(event.esp_event, dict) else {}
    recipient = (event.recipient or "").strip().lower()
    diagnostic = _diagnostic(event)
    found = _FOUND[provider](esp, recipient)
    return BounceReport(
        kind=kind,
        source=f"webhook:{provider}",
        recipient=recipient,
        status=found.get("status") or _status_in(diagnostic),
        diagnostic=diagnostic,
        message_id=found.get("message_id") or _bracketed(event.message_id or ""),
        **_verp_fields(found.get("envelope_sender", "")),
        note=found.get("note", ""),
    )


def _kind(provider: str, event: AnymailTrackingEvent) -> BounceKind | None:
    kind = event.event_type
    if kind == EventType.COMPLAINED:
        return BounceKind.COMPLAINT
    if kind == EventType.DEFERRED:
        return BounceKind.SOFT
    if kind == EventType.REJECTED:
        refused = event.reject_reason in (RejectReason.BOUNCED, RejectReason.INVALID)
        return BounceKind.HARD if refused else None
    if kind == EventType.BOUNCED:
        esp = event.esp_event if isinstance(event.esp_event, dict) else {}
        return _HARD_WHEN[provider](esp)
    return None


def _ses_bounce(esp: dict[str, Any]) -> BounceKind | None:
    # SES bounceType: Permanent, Transient or Undetermined (docs.aws.amazon.com/ses/latest/dg/
    # notification-contents.html); Undetermined is not proof the address is gone.
    permanent = esp.get("bounce", {}).get("bounceType") == "Permanent"
    return BounceKind.HARD if permanent else BounceKind.SOFT


def _sendgrid_bounce(esp: dict[str, Any]) -> BounceKind | None:
    # SendGrid's bounce event: type "bounce" (the address) or "blocked" (the message was
    # refused, not the address; twilio.com/docs/sendgrid/for-developers/tracking-events/event).
    blocked = esp.get("type") == "blocked" or str(esp.get("status", "")).startswith("4")
    return BounceKind.SOFT if blocked else BounceKind.HARD


def _mailgun_bounce(esp: dict[str, Any]) -> BounceKind | None:
    # event "failed" with severity "permanent" (temporary ones anymail already calls deferred:
    # documentation.mailgun.com/docs/mailgun/user-manual/webhooks/webhook-payloads).
    return BounceKind.HARD


# Postmark's bounce Type (postmarkapp.com/developer/webhooks/bounce-webhook): anymail calls a
# SoftBounce "bounced"; virus and unknown notifications say nothing about the address.
_POSTMARK_KINDS = {
    "HardBounce": BounceKind.HARD,
    "BadEmailAddress": BounceKind.HARD,
    "SoftBounce": BounceKind.SOFT,
    "Transient": BounceKind.SOFT,
    "DnsError": BounceKind.SOFT,
}


def _postmark_bounce(esp: dict[str, Any]) -> BounceKind | None:
    return _POSTMARK_KINDS.get(str(esp.get("Type", "")))


# Brevo's events (developers.brevo.com/docs/transactional-webhooks): anymail calls
# soft_bounce and invalid_email "bounced" too.
_BREVO_KINDS = {
    "hard_bounce": BounceKind.HARD,
    "invalid_email": BounceKind.HARD,
    "soft_bounce": BounceKind.SOFT,
}


def _brevo_bounce(esp: dict[str, Any]) -> BounceKind | None:
    return _BREVO_KINDS.get(str(esp.get("event", "")))


_HARD_WHEN: dict[str, Callable[[dict[str, Any]], BounceKind | None]] = {
    "amazon_ses": _ses_bounce,
    "sendgrid": _sendgrid_bounce,
    "mailgun": _mailgun_bounce,
    "postmark": _postmark_bounce,
    "brevo": _brevo_bounce,
}


# --- what each provider echoes of the message Bulletin sent -------------------------------------


def _ses_found(esp: dict[str, Any], recipient: str) -> dict[str, str]:
    mail = esp.get("mail", {})
    found = {"envelope_sender": str(mail.get("source", ""))}
    found["message_id"] = _bracketed(str(mail.get("commonHeaders", {}).get("messageId", "")))
    for bounced in esp.get("bounce", {}).get("bouncedRecipients", []):
        if str(bounced.get("emailAddress", "")).lower() == recipient:
            found["status"] = str(bounced.get("status", ""))
    return found


def _sendgrid_found(esp: dict[str, Any], recipient: str) -> dict[str, str]:
    # smtp-id: the Message-ID header of the message as it reached SendGrid.
    status = str(esp.get("status", ""))
    return {"message_id": _bracketed(str(esp.get("smtp-id", ""))), "status": status}


def _mailgun_found(esp: dict[str, Any], recipient: str) -> dict[str, str]:
    data = esp.get("event-data", {})
    delivery_status = data.get("delivery-status") or {}
    return {
        "envelope_sender": str(data.get("envelope", {}).get("sender", "")),
        "status": str(delivery_status.get("enhanced-code", "")),
    }


def _postmark_found(esp: dict[str, Any], recipient: str) -> dict[str, str]:
    """Postmark's MessageID is its own; the Message-ID Bulletin wrote is only in the returned
    message, sent as ``Content`` when the webhook's "Include bounce content" is on."""
    content = esp.get("Content")
    if not content:
        return {"message_id": "", "note": "Postmark sent no bounce content to match"}
    returned = bounce_parse.parse(str(content).encode("utf-8", "replace"), source="webhook")
    return {"message_id": returned.message_id, "status": returned.status}


def _brevo_found(esp: dict[str, Any], recipient: str) -> dict[str, str]:
    return {"message_id": _bracketed(str(esp.get("message-id", "")))}


_FOUND: dict[str, Callable[[dict[str, Any], str], dict[str, str]]] = {
    "amazon_ses": _ses_found,
    "sendgrid": _sendgrid_found,
    "mailgun": _mailgun_found,
    "postmark": _postmark_found,
    "brevo": _brevo_found,
}


def _verp_fields(envelope_sender: str) -> dict[str, Any]:
    """delivery_id from a VERP return path the provider reports; key_refused when it is
    Bulletin's bounce address with a key Bulletin did not sign; nothing for other senders."""
    bounce_address = options().bounce_address.lower()
    local, _, domain = bounce_address.rpartition("@")
    sender = envelope_sender.strip().strip("<>").lower()
    if not bounce_address or not (sender.startswith(f"{local}+") and sender.endswith(f"@{domain}")):
        return {}
    try:
        return {"delivery_id": verp.delivery_of(sender)}
    except verp.NoKey:
        return {}
    except verp.KeyRefused as exc:
        return {"key_refused": str(exc)}


def _diagnostic(event: AnymailTrackingEvent) -> str:
    words = [w.strip() for w in (event.mta_response, event.description) if w and w.strip()]
    unique = list(dict.fromkeys(words))
    return " — ".join(unique)[:DIAGNOSTIC_LONGEST]


def _status_in(diagnostic: str) -> str:
    found = _STATUS.search(diagnostic)
    return found[1] if found else ""


def _bracketed(message_id: str) -> str:
    message_id = message_id.strip()
    if not message_id or "@" not in message_id:
        return message_id
    return message_id if message_id.startswith("<") else f"<{message_id}>"
