"""Mail providers' bounce and complaint events (bulletin.interfaces.bounce_webhooks), replayed as
each provider documents them through Django's test client with the provider's credentials,
into the real ``bounces.record``: what moves, what is kept, and what is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import replace
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from bulletin import conf
from bulletin.channels import verp
from bulletin.channels.email import message_id
from bulletin.domain.models import (
    Bounce,
    Channel,
    ChannelOptOut,
    Delivery,
    DeliveryState,
    Suppression,
)
from bulletin.interfaces.bounce_webhooks import confirm_sns_subscription
from tests import factories

pytestmark = [
    pytest.mark.django_db,
    # anymail 15 warns on each SendGrid request that it no longer tests SendGrid live.
    pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning"),
]

SECRET = "bulletin-bounces:a-long-random-password"
MAILGUN_KEY = "key-mailgun-webhook-signing-key"
BOUNCES = "bounces@example.com"
UNKNOWN_USER = "smtp; 550 5.1.1 user unknown"


@pytest.fixture
def sent(settings: Any) -> dict[str, Delivery]:
    """Three people each sent one email; by address. Providers' credentials configured."""
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}
    settings.BULLETIN = replace(conf.load({}), bounce_address=BOUNCES)
    factories.employees(3)
    factories.fired(channels=("email",))
    factories.put(Delivery.objects.all(), state=DeliveryState.SENT, sent_at=timezone.now())
    emails = Delivery.objects.filter(channel=Channel.EMAIL).select_related("employee")
    return {d.employee.email: d for d in emails}


def basic(secret: str = SECRET) -> str:
    return "Basic " + base64.b64encode(secret.encode()).decode()


def post(provider: str, body: Any, auth: str | None = None, **headers: str) -> Any:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    extra: dict[str, Any] = {"HTTP_AUTHORIZATION": auth or basic(), **headers}
    return Client().post(
        f"/bounces/webhooks/{provider}/", data, content_type="application/json", **extra
    )


def state_of(delivery: Delivery) -> str:
    return Delivery.objects.get(pk=delivery.pk).state


def quoted(delivery: Delivery) -> str:
    return message_id(delivery.idempotency_key)


# --- Amazon SES through SNS ---------------------------------------------------------------------
# The bounce and complaint objects as docs.aws.amazon.com/ses/latest/dg/notification-examples.html
# shows them (bounceType, bouncedRecipients with status and diagnosticCode; mail.source is the
# envelope sender; commonHeaders.messageId the Message-ID the message carried), wrapped in the
# SNS Notification envelope of docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html.


def ses_bounce(recipient: str, *, bounce_type: str, source: str, sent_id: str = "") -> dict:
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": recipient,
                    "action": "failed",
                    "status": "5.1.1" if bounce_type == "Permanent" else "4.2.2",
                    "diagnosticCode": UNKNOWN_USER,
                }
            ],
            "timestamp": "2026-12-07T11:05:06.477Z",
            "feedbackId": "0102015fd91a6479-ae22395c-1f7d-4423-a9e5-e0715bffc731-000000",
            "reportingMTA": "dsn; a4-8.smtp-out.eu-west-1.amazonses.com",
        },
        "mail": {
            "timestamp": "2026-12-07T11:05:04.000Z",
            "source": source,
            "messageId": "0102015fd91a5ca3-93c245fe-e333-46ae-8fed-96160d20cfab-000000",
            "destination": [recipient],
            "commonHeaders": {"messageId": sent_id, "subject": "Canteen reopens"},
        },
    }


def ses_complaint(recipient: str, sent_id: str) -> dict:
    return {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": recipient}],
            "timestamp": "2026-12-07T11:15:00.000Z",
            "feedbackId": "0102015fd91a6479-complaint-000000",
            "complaintFeedbackType": "abuse",
            "userAgent": "Yahoo!-Mail-Feedback/2.0",
        },
        "mail": {
            "timestamp": "2026-12-07T11:05:04.000Z",
            "source": "hr@example.com",
            "messageId": "0102015fd91a5ca3-0000",
            "destination": [recipient],
            "commonHeaders": {"messageId": sent_id},
        },
    }


def sns(message: Any, kind: str = "Notification", **fields: str) -> tuple[dict, dict]:
    """The SNS envelope and the headers SNS sends with it."""
    body = {
        "Type": kind,
        "MessageId": f"sns-{hashlib.sha256(json.dumps(message).encode()).hexdigest()[:16]}",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:bulletin-bounces",
        "Message": message if isinstance(message, str) else json.dumps(message),
        "Timestamp": "2026-12-07T11:05:07.000Z",
        **fields,
    }
    headers = {"HTTP_X_AMZ_SNS_MESSAGE_TYPE": kind, "HTTP_X_AMZ_SNS_MESSAGE_ID": body["MessageId"]}
    return body, headers


def test_a_permanent_ses_bounce_bounces_the_delivery_its_verp_return_path_names(
    sent: dict[str, Delivery],
) -> None:
    email = sent["person0@example.com"]
    event = ses_bounce(
        "person0@example.com", bounce_type="Permanent", source=verp.return_path(email.pk)
    )
    body, headers = sns(event)
    answer = post("amazon_ses", body, **headers)

    assert answer.status_code == 200
    assert state_of(email) == DeliveryState.BOUNCED
    assert Delivery.objects.get(pk=email.pk).last_error.startswith("bounced: 5.1.1 smtp; 550")
    kept = Bounce.objects.get()
    assert (kept.source, kept.kind, kept.outcome) == ("webhook:amazon_ses", "hard", "bounced")
    assert json.loads(bytes(kept.raw))["event"]["bounce"]["bounceType"] == "Permanent"
    assert Suppression.objects.get().address == "person0@example.com"


def test_a_transient_ses_bounce_is_counted_soft_and_the_delivery_stays_sent(
    sent: dict[str, Delivery],
) -> None:
    email = sent["person1@example.com"]
    event = ses_bounce(
        "person1@example.com",
        bounce_type="Transient",
        source="hr@example.com",
        sent_id=quoted(email),
    )
    body, headers = sns(event)
    assert post("amazon_ses", body, **headers).status_code == 200

    assert state_of(email) == DeliveryState.SENT
    kept = Bounce.objects.get()
    assert (kept.kind, kept.outcome, kept.status) == ("soft", "soft", "4.2.2")
    assert not Suppression.objects.exists()


def test_an_ses_complaint_matched_by_message_id_opts_the_person_out_of_email(
    sent: dict[str, Delivery],
) -> None:
    email = sent["person2@example.com"]
    body, headers = sns(ses_complaint("person2@example.com", quoted(email)))
    assert post("amazon_ses", body, **headers).status_code == 200

    assert ChannelOptOut.objects.filter(employee=email.employee, channel=Channel.EMAIL).exists()
    assert Bounce.objects.get().outcome == "complaint"
    assert state_of(email) == DeliveryState.SENT


def test_a_forged_verp_key_in_an_ses_event_fails_nobody(sent: dict[str, Delivery]) -> None:
    email = sent["person0@example.com"]
    forged = f"bounces+{email.pk}-aaaaaaaaaaaa@example.com"
    body, headers = sns(ses_bounce("person0@example.com", bounce_type="Permanent", source=forged))
    assert post("amazon_ses", body, **headers).status_code == 200

    assert state_of(email) == DeliveryState.SENT
    kept = Bounce.objects.get()
    assert kept.outcome == "unmatched" and "VERP key refused" in kept.note
    assert not Suppression.objects.exists()


def test_sns_without_credentials_is_asked_for_them_and_records_nothing(
    sent: dict[str, Delivery],
) -> None:
    body, headers = sns(ses_bounce("person0@example.com", bounce_type="Permanent", source=""))
    answer = Client().post(
        "/bounces/webhooks/amazon_ses/", json.dumps(body), content_type="text/plain", **headers
    )
    assert answer.status_code == 401 and answer["WWW-Authenticate"].startswith("Basic")
    assert not Bounce.objects.exists()


def test_an_sns_subscription_with_a_subscribe_url_off_amazon_is_refused(
    sent: dict[str, Delivery],
) -> None:
    body, headers = sns(
        "You have chosen to subscribe to the topic.",
        kind="SubscriptionConfirmation",
        Token="2336412f37",
        SubscribeURL="https://attacker.example/?Action=ConfirmSubscription",
    )
    assert post("amazon_ses", body, **headers).status_code == 400


def test_only_amazon_sns_https_hosts_are_visited_to_confirm_a_subscription() -> None:
    visited: list[str] = []

    class Answer:
        def __enter__(self) -> Answer:
            return self

        def __exit__(self, *_: Any) -> None:
            return None

        def read(self) -> bytes:
            return b"<ConfirmSubscriptionResponse/>"

    def opener(url: str, timeout: float) -> Answer:
        visited.append(url)
        return Answer()

    good = "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=2336412f37"
    confirm_sns_subscription(good, opener)
    for bad in (
        "http://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription",
        "https://sns.eu-west-1.amazonaws.com.attacker.example/",
        "https://127.0.0.1/",
        "file:///etc/passwd",
    ):
        with pytest.raises(Exception, match="not Amazon SNS's"):
            confirm_sns_subscription(bad, opener)
    assert visited == [good]


# --- SendGrid -----------------------------------------------------------------------------------
# Events as twilio.com/docs/sendgrid/for-developers/tracking-events/event lists them: a JSON
# array; "smtp-id" is the Message-ID the message arrived with; a bounce has "type" bounce or
# blocked, "status" and "reason".


def sendgrid(event: str, address: str, smtp_id: str, **fields: Any) -> dict:
    return {
        "email": address,
        "timestamp": int(time.time()),
        "smtp-id": smtp_id,
        "event": event,
        "category": "cat facts",
        "sg_event_id": f"sg-{event}-{address}",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        **fields,
    }


def test_a_sendgrid_batch_records_the_bounce_and_the_deferral_and_ignores_the_rest(
    sent: dict[str, Delivery],
) -> None:
    gone, slow = sent["person0@example.com"], sent["person1@example.com"]
    batch = [
        sendgrid("processed", "person0@example.com", quoted(gone)),
        sendgrid("delivered", "person2@example.com", quoted(sent["person2@example.com"])),
        sendgrid("open", "person2@example.com", quoted(sent["person2@example.com"])),
        sendgrid(
            "bounce",
            "person0@example.com",
            quoted(gone),
            reason="500 unknown recipient",
            status="5.0.0",
            type="bounce",
        ),
        sendgrid("deferred", "person1@example.com", quoted(slow), response="400 try again later"),
    ]
    assert post("sendgrid", batch).status_code == 200

    assert state_of(gone) == DeliveryState.BOUNCED
    assert state_of(slow) == DeliveryState.SENT
    outcomes = sorted(Bounce.objects.values_list("recipient", "outcome", "status"))
    assert outcomes == [
        ("person0@example.com", "bounced", "5.0.0"),
        ("person1@example.com", "soft", ""),
    ]


def test_a_sendgrid_blocked_bounce_is_soft(sent: dict[str, Delivery]) -> None:
    email = sent["person0@example.com"]
    event = sendgrid(
        "bounce",
        "person0@example.com",
        quoted(email),
        reason="550 blocked by policy",
        status="5.7.1",
        type="blocked",
    )
    assert post("sendgrid", [event]).status_code == 200
    assert state_of(email) == DeliveryState.SENT and Bounce.objects.get().outcome == "soft"


def test_a_sendgrid_drop_for_a_known_bounced_address_is_hard(sent: dict[str, Delivery]) -> None:
    email = sent["person0@example.com"]
    event = sendgrid("dropped", "person0@example.com", quoted(email), reason="Bounced Address")
    assert post("sendgrid", [event]).status_code == 200
    assert state_of(email) == DeliveryState.BOUNCED


def test_a_sendgrid_signed_event_webhook_needs_no_password_but_a_valid_signature(
    sent: dict[str, Delivery], settings: Any
) -> None:
    """SendGrid's Signed Event Webhook: ECDSA P-256 over the timestamp and the body, checked
    with the public key SendGrid shows (base64 SubjectPublicKeyInfo, no PEM lines)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    settings.ANYMAIL = {
        "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": base64.b64encode(public).decode()
    }
    email = sent["person0@example.com"]
    body = json.dumps([sendgrid("bounce", "person0@example.com", quoted(email), type="bounce")])
    timestamp = str(int(time.time()))
    signature = key.sign(timestamp.encode() + body.encode(), ec.ECDSA(hashes.SHA256()))
    signed: dict[str, Any] = {
        "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE": base64.b64encode(signature).decode(),
        "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP": timestamp,
    }
    client = Client()
    url = "/bounces/webhooks/sendgrid/"
    tampered = body.replace("person0", "person1")
    answer = client.post(url, tampered, content_type="application/json", **signed)
    assert answer.status_code == 400 and not Bounce.objects.exists()
    assert client.post(url, body, content_type="application/json", **signed).status_code == 200
    assert state_of(email) == DeliveryState.BOUNCED


# --- Mailgun ------------------------------------------------------------------------------------
# The "failed" event as documentation.mailgun.com/docs/mailgun/user-manual/webhooks/
# webhook-payloads shows it: a signature block (HMAC-SHA256 of timestamp and token with the
# webhook signing key) and event-data with severity, reason, delivery-status and the message's
# headers (message-id without angle brackets).


def mailgun(address: str, sent_id: str, severity: str, key: str = MAILGUN_KEY) -> dict:
    timestamp, token = str(int(time.time())), f"token-{severity}-{address}"
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256)
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature.hexdigest()},
        "event-data": {
            "event": "failed",
            "severity": severity,
            "reason": "bounce" if severity == "permanent" else "generic",
            "recipient": address,
            "timestamp": float(timestamp),
            "id": "G9Bn5sl1TC6nu79C8C0bwg",
            "envelope": {"sender": "hr@example.com", "transport": "smtp", "targets": address},
            "delivery-status": {
                "attempt-no": 1,
                "code": 550 if severity == "permanent" else 452,
                "enhanced-code": "5.1.1" if severity == "permanent" else "4.2.2",
                "message": "5.1.1 The email account that you tried to reach does not exist.",
                "description": "",
            },
            "message": {"headers": {"to": address, "message-id": sent_id.strip("<>")}},
        },
    }


def test_a_signed_permanent_mailgun_failure_bounces_the_delivery(
    sent: dict[str, Delivery],
) -> None:
    email = sent["person1@example.com"]
    answer = post("mailgun", mailgun("person1@example.com", quoted(email), "permanent"))
    assert answer.status_code == 200
    assert state_of(email) == DeliveryState.BOUNCED
    assert Bounce.objects.get().status == "5.1.1"


def test_a_temporary_mailgun_failure_is_soft(sent: dict[str, Delivery]) -> None:
    email = sent["person1@example.com"]
    assert (
        post("mailgun", mailgun("person1@example.com", quoted(email), "temporary")).status_code
        == 200
    )
    assert state_of(email) == DeliveryState.SENT and Bounce.objects.get().outcome == "soft"


def test_a_mailgun_event_signed_with_another_key_is_refused(sent: dict[str, Delivery]) -> None:
    email = sent["person1@example.com"]
    forged = mailgun("person1@example.com", quoted(email), "permanent", key="someone else's")
    assert post("mailgun", forged).status_code == 400
    assert state_of(email) == DeliveryState.SENT and not Bounce.objects.exists()


# --- Postmark -----------------------------------------------------------------------------------
# The bounce webhook of postmarkapp.com/developer/webhooks/bounce-webhook: Type HardBounce,
# Postmark's own MessageID, and (with "Include bounce content") the bounce itself in Content.


def postmark(address: str, kind: str = "HardBounce", content: str = "") -> dict:
    return {
        "RecordType": "Bounce",
        "ID": 42,
        "Type": kind,
        "TypeCode": 1,
        "Name": "Hard bounce",
        "Tag": "Test",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": address,
        "From": "hr@example.com",
        "BouncedAt": "2026-12-07T13:28:10.2735393-04:00",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Canteen reopens",
        "Content": content,
    }


def returned_dsn(address: str, sent_id: str) -> str:
    return (
        "From: MAILER-DAEMON@mx.example.net\r\nTo: hr@example.com\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: text/plain\r\n\r\n<{address}>: user unknown\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n"
        f"\r\nFinal-Recipient: rfc822; {address}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: hr@example.com\r\nTo: {address}\r\nMessage-ID: {sent_id}\r\n--b--\r\n"
    )


def test_a_postmark_hard_bounce_with_its_content_is_matched_by_the_returned_message_id(
    sent: dict[str, Delivery],
) -> None:
    email = sent["person2@example.com"]
    content = returned_dsn("person2@example.com", quoted(email))
    assert post("postmark", postmark("person2@example.com", content=content)).status_code == 200
    assert state_of(email) == DeliveryState.BOUNCED
    assert Bounce.objects.get().status == "5.1.1"


def test_a_postmark_bounce_without_content_is_kept_unmatched_and_answered_200(
    sent: dict[str, Delivery],
) -> None:
    assert post("postmark", postmark("person2@example.com")).status_code == 200
    kept = Bounce.objects.get()
    assert kept.outcome == "unmatched" and kept.recipient == "person2@example.com"
    assert not Suppression.objects.exists()
    assert not Delivery.objects.filter(state=DeliveryState.BOUNCED).exists()


def test_a_postmark_soft_bounce_is_soft(sent: dict[str, Delivery]) -> None:
    email = sent["person2@example.com"]
    content = returned_dsn("person2@example.com", quoted(email)).replace("5.1.1", "4.2.2")
    body = postmark("person2@example.com", kind="SoftBounce", content=content)
    assert post("postmark", body).status_code == 200
    assert state_of(email) == DeliveryState.SENT and Bounce.objects.get().outcome == "soft"


# --- Brevo --------------------------------------------------------------------------------------
# Transactional webhooks as developers.brevo.com/docs/transactional-webhooks lists them:
# event hard_bounce / soft_bounce / spam, the message-id, reason, ts_epoch in milliseconds.


def brevo(event: str, address: str, sent_id: str) -> dict:
    return {
        "event": event,
        "email": address,
        "id": 123456,
        "date": "2026-12-07 12:00:00",
        "ts": 1796646000,
        "message-id": sent_id,
        "ts_event": 1796646000,
        "subject": "Canteen reopens",
        "sending_ip": "185.41.28.109",
        "ts_epoch": 1796646000123,
        "reason": "550 5.1.1 mailbox unavailable",
        "tag": "",
    }


def test_a_brevo_hard_bounce_bounces_and_a_spam_report_opts_out(
    sent: dict[str, Delivery],
) -> None:
    gone, annoyed = sent["person0@example.com"], sent["person1@example.com"]
    assert (
        post("brevo", brevo("hard_bounce", "person0@example.com", quoted(gone))).status_code == 200
    )
    assert post("brevo", brevo("spam", "person1@example.com", quoted(annoyed))).status_code == 200

    assert state_of(gone) == DeliveryState.BOUNCED
    assert Bounce.objects.get(recipient="person0@example.com").status == "5.1.1"
    assert ChannelOptOut.objects.filter(employee=annoyed.employee).exists()


def test_brevo_opens_and_deliveries_record_nothing(sent: dict[str, Delivery]) -> None:
    email = sent["person0@example.com"]
    for event in ("delivered", "unique_opened", "click", "request"):
        assert post("brevo", brevo(event, "person0@example.com", quoted(email))).status_code == 200
    assert not Bounce.objects.exists()


# --- what every provider's URL shares -----------------------------------------------------------


def test_a_replayed_event_is_recorded_once(sent: dict[str, Delivery]) -> None:
    email = sent["person0@example.com"]
    event = brevo("hard_bounce", "person0@example.com", quoted(email))
    assert post("brevo", event).status_code == 200
    assert post("brevo", event).status_code == 200
    assert Bounce.objects.count() == 1 and Suppression.objects.count() == 1


@pytest.mark.parametrize("provider", ["amazon_ses", "sendgrid", "postmark", "brevo", "mailgun"])
def test_wrong_basic_auth_is_refused_and_records_nothing(
    sent: dict[str, Delivery], provider: str
) -> None:
    email = sent["person0@example.com"]
    bodies: dict[str, tuple[Any, dict]] = {
        "amazon_ses": sns(ses_bounce("person0@example.com", bounce_type="Permanent", source="")),
        "sendgrid": ([sendgrid("bounce", "person0@example.com", quoted(email))], {}),
        "postmark": (postmark("person0@example.com"), {}),
        "brevo": (brevo("hard_bounce", "person0@example.com", quoted(email)), {}),
        "mailgun": (mailgun("person0@example.com", quoted(email), "permanent"), {}),
    }
    body, headers = bodies[provider]
    # Mailgun's body is correctly signed: with a secret set, its basic auth is checked too.
    answer = post(provider, body, auth=basic("bulletin-bounces:wrong"), **headers)
    assert answer.status_code == 400
    assert not Bounce.objects.exists() and state_of(email) == DeliveryState.SENT


@pytest.mark.parametrize("provider", ["amazon_ses", "sendgrid", "mailgun", "postmark", "brevo"])
def test_a_provider_without_its_credential_is_not_served(settings: Any, provider: str) -> None:
    settings.ANYMAIL = {}
    assert post(provider, {"event": "hard_bounce"}).status_code == 404


def test_a_body_that_is_not_the_providers_json_is_a_400(sent: dict[str, Delivery]) -> None:
    assert post("sendgrid", "not json at all").status_code == 400
    assert post("brevo", "[1, 2").status_code == 400
    assert not Bounce.objects.exists()
