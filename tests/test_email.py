"""The email channel against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

from datetime import timedelta
from email.utils import parseaddr
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from bulletin.channels.email import message_id
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import Delivery, DeliveryState, Employee
from tests import factories
from tests.harness import SmtpSink, free_port
from tests.test_mail_headers import (
    SCRIPTS,
    assert_within_limits,
    decoded,
    raw_name,
    strictly_parsed,
)

pytestmark = pytest.mark.django_db

BODY = "Hello {{ first_name }},\n\nThe office is **closed** on Friday.\n\n<b onclick=x>hi</b>"


def occurrence_due(count: int, **fields: Any) -> list[Delivery]:
    factories.employees(count)
    factories.fired(body=BODY, title="Office closed Friday", **fields)
    return list(Delivery.objects.order_by("pk"))


def test_each_recipient_gets_one_multipart_email_keyed_by_its_delivery(
    smtp_settings: SmtpSink,
) -> None:
    deliveries = occurrence_due(3)
    Dispatcher().run_until_idle()
    assert len(smtp_settings.received) == 3
    by_id = {r.message_id: r for r in smtp_settings.received}
    for delivery in deliveries:
        received = by_id[message_id(delivery.idempotency_key)]
        assert received.recipients == [delivery.employee.email]
        assert received.sender == parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
        assert received.message["Subject"] == "Office closed Friday"
        assert delivery.employee.name in received.message["To"]
        text = received.message.get_body(("plain",)).get_content()
        html = received.message.get_body(("html",)).get_content()
        assert text.startswith("Hello Person,") and "closed" in text
        assert "<strong>closed</strong>" in html and "<b onclick" not in html
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.SENT}


def test_a_5xx_recipient_refusal_fails_the_delivery_without_retrying(
    smtp_settings: SmtpSink,
) -> None:
    occurrence_due(2)
    smtp_settings.rcpt_replies["person0@example.com"] = "550 5.1.1 No such user"
    Dispatcher().run_until_idle()
    refused = Delivery.objects.get(employee__email="person0@example.com")
    assert (refused.state, refused.attempts) == (DeliveryState.FAILED, 1)
    assert "550" in refused.last_error
    assert Delivery.objects.get(employee__email="person1@example.com").state == "sent"


def test_an_international_domain_travels_in_idna_in_the_envelope_and_the_header(
    smtp_settings: SmtpSink,
) -> None:
    occurrence_due(1)
    Delivery.objects.get().employee.__class__.objects.update(email="ana@bücher.example")
    Dispatcher().run_until_idle()
    (received,) = smtp_settings.received
    assert received.recipients == ["ana@xn--bcher-kva.example"]
    assert "<ana@xn--bcher-kva.example>" in received.message["To"]
    assert Delivery.objects.get().state == DeliveryState.SENT


def test_a_4xx_refusal_is_retried_later(smtp_settings: SmtpSink) -> None:
    occurrence_due(1)
    smtp_settings.rcpt_replies["person0@example.com"] = "450 4.2.1 Mailbox busy"
    Dispatcher().run_until_idle()
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts) == (DeliveryState.PENDING, 1)
    assert delivery.due_at > timezone.now()
    del smtp_settings.rcpt_replies["person0@example.com"]
    with time_machine.travel(delivery.due_at + timedelta(seconds=1), tick=False):
        Dispatcher().run_until_idle()
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.SENT
    assert len(smtp_settings.received) == 1


def test_a_5xx_data_rejection_fails_the_delivery(smtp_settings: SmtpSink) -> None:
    occurrence_due(1)
    smtp_settings.data_reply = "554 5.6.0 Message rejected"
    Dispatcher().run_until_idle()
    assert Delivery.objects.get().state == DeliveryState.FAILED


def test_an_unreachable_server_is_retried_not_marked_unknown(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    occurrence_due(2)
    Dispatcher().run_until_idle()
    for delivery in Delivery.objects.all():
        assert (delivery.state, delivery.attempts) == (DeliveryState.PENDING, 1)
        assert "cannot connect" in delivery.last_error


def test_a_connection_lost_after_data_is_unknown_and_never_resent(
    smtp_settings: SmtpSink,
) -> None:
    occurrence_due(1)
    smtp_settings.hang_up_after_data = True
    Dispatcher().run_until_idle()
    delivery = Delivery.objects.get()
    assert delivery.state == DeliveryState.UNKNOWN
    smtp_settings.hang_up_after_data = False
    Dispatcher().run_until_idle()
    assert len(smtp_settings.received) == 1  # the server has it once; Bulletin did not resend


def test_a_header_injection_attempt_in_a_name_cannot_add_headers(
    smtp_settings: SmtpSink,
) -> None:
    occurrence_due(1)
    Delivery.objects.get().employee.__class__.objects.update(name="Eve\r\nBcc: x@evil.test")
    Dispatcher().run_until_idle()
    assert smtp_settings.received == []
    delivery = Delivery.objects.get()
    assert delivery.state == DeliveryState.FAILED
    assert "cannot build the email" in delivery.last_error


def test_console_backend_prints_the_email_by_default(
    settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    occurrence_due(1)
    Dispatcher().run_until_idle()
    out = capsys.readouterr().out
    assert "Subject: Office closed Friday" in out and "Hello Person," in out
    assert Delivery.objects.get().state == DeliveryState.SENT


def test_an_invalid_address_fails_permanently_without_touching_the_server(
    smtp_settings: SmtpSink,
) -> None:
    occurrence_due(1)
    Delivery.objects.get().employee.__class__.objects.update(email="not an address")
    Dispatcher().run_until_idle()
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts) == (DeliveryState.FAILED, 1)
    assert smtp_settings.received == []


@pytest.mark.parametrize("script", ["latin-1", "cjk", "emoji", "rtl", "ascii-long"])
def test_titles_and_names_in_any_script_arrive_within_the_header_limits_and_read_back(
    smtp_settings: SmtpSink, script: str
) -> None:
    text = SCRIPTS[script].strip()[:200]
    factories.employees(2)
    Employee.objects.update(name=text[:100].strip())
    factories.fired(body=BODY, title=text)
    Dispatcher().run_until_idle()
    assert len(smtp_settings.received) == 2
    for received in smtp_settings.received:
        assert_within_limits(received.data)
        parsed = strictly_parsed(received.data)
        assert str(parsed["Subject"]) == text
        assert decoded(raw_name(received.data)) == text[:100].strip()
