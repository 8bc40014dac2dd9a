"""VERP return paths: each email's envelope sender names its delivery, signed."""

from __future__ import annotations

from dataclasses import replace
from email.utils import parseaddr
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import get_connection

from bulletin import conf
from bulletin.channels import verp
from bulletin.channels.base import Message, Recipient
from bulletin.channels.email import EmailTransport
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import Delivery
from tests import factories
from tests.harness import SmtpSink

BOUNCES = "bounces@example.com"
ANA = Recipient(email="ana@example.com", name="Ana Lee", timezone="Europe/London")


@pytest.fixture
def bounce_address(settings: Any) -> str:
    settings.BULLETIN = replace(conf.load({}), bounce_address=BOUNCES)
    return BOUNCES


def test_a_return_path_names_its_delivery_and_reads_back(bounce_address: str) -> None:
    address = verp.return_path(4711)
    local, _, domain = address.partition("@")
    assert domain == "example.com" and local.startswith("bounces+4711-")
    assert verp.delivery_of(address) == 4711
    assert verp.delivery_of(f"<{address}>") == 4711


def test_a_key_holds_only_lower_case_letters_digits_and_one_hyphen(bounce_address: str) -> None:
    for delivery_id in (1, 99, 2**62):
        key = verp.key_for(delivery_id)
        assert key == key.lower() and key.replace("-", "").isalnum() and key.count("-") == 1
        assert len(f"{'b' * conf.BOUNCE_LOCAL_PART_LONGEST}+{key}") <= 64  # RFC 5321 4.5.3.1.1


def test_a_key_survives_an_mta_that_changes_its_case(bounce_address: str) -> None:
    address = verp.return_path(52)
    assert verp.delivery_of(address.upper()) == 52
    assert verp.delivery_of(address.title()) == 52


def test_a_changed_delivery_id_is_refused(bounce_address: str) -> None:
    key = verp.key_for(52)
    forged = f"bounces+53-{key.partition('-')[2]}@example.com"
    with pytest.raises(verp.KeyRefused, match="signature"):
        verp.delivery_of(forged)


def test_a_changed_signature_is_refused(bounce_address: str) -> None:
    delivery_id, mac = verp.key_for(52).split("-")
    changed = ("b" if mac[0] == "a" else "a") + mac[1:]
    with pytest.raises(verp.KeyRefused, match="signature"):
        verp.delivery_of(f"bounces+{delivery_id}-{changed}@example.com")


def test_a_key_made_with_another_secret_is_refused(bounce_address: str, settings: Any) -> None:
    address = verp.return_path(52)
    settings.SECRET_KEY = "another installation's secret key, fifty characters long or so"
    with pytest.raises(verp.KeyRefused, match="signature"):
        verp.delivery_of(address)


def test_a_key_made_before_the_secret_was_rotated_is_still_read(
    bounce_address: str, settings: Any
) -> None:
    address = verp.return_path(52)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "the new secret key, rotated after the message went out, long"
    assert verp.delivery_of(address) == 52


@pytest.mark.parametrize(
    "address",
    [
        "bounces+52@example.com",
        "bounces+52-@example.com",
        "bounces+-abcdefabcdef@example.com",
        "bounces+052-abcdefabcdef@example.com",
        "bounces+52-abcdefabcde1@example.com",
        "bounces+52-abcdefabcdefg@example.com",
        "bounces+x@example.com",
        "bounces+@example.com",
    ],
)
def test_a_malformed_key_is_refused_as_malformed(bounce_address: str, address: str) -> None:
    with pytest.raises(verp.KeyRefused, match="malformed") as refused:
        verp.delivery_of(address)
    assert not isinstance(refused.value, verp.NoKey)


@pytest.mark.parametrize(
    "address", ["bounces@example.com", "BOUNCES@example.com", "ana@example.com", "", "<>"]
)
def test_an_address_without_a_key_says_it_has_none(bounce_address: str, address: str) -> None:
    with pytest.raises(verp.NoKey):
        verp.delivery_of(address)


def test_the_key_is_read_after_the_last_plus_when_the_bounce_address_has_one(
    settings: Any,
) -> None:
    settings.BULLETIN = replace(conf.load({}), bounce_address="bulletin+bounces@example.com")
    address = verp.return_path(7)
    assert address.startswith("bulletin+bounces+7-")
    assert verp.delivery_of(address) == 7
    with pytest.raises(verp.NoKey):
        verp.delivery_of("bulletin+bounces@example.com")


def test_a_key_with_a_sub_address_added_after_it_is_refused(bounce_address: str) -> None:
    with pytest.raises(verp.KeyRefused, match="malformed"):
        verp.delivery_of(verp.return_path(7).replace("@", "+extra@"))


def test_no_bounce_address_means_no_return_path(settings: Any) -> None:
    settings.BULLETIN = conf.load({})
    assert verp.return_path(7) == ""


def test_a_message_without_a_delivery_returns_to_the_plain_bounce_address(
    bounce_address: str,
) -> None:
    assert verp.return_path(0) == BOUNCES


@pytest.mark.parametrize(
    "raw",
    [
        "not an address",
        "Bounces <bounces@example.com>",
        f"{'b' * 31}@example.com",
        "bö@example.com",
    ],
)
def test_a_bounce_address_that_cannot_carry_a_key_stops_start_up(raw: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="BULLETIN_BOUNCE_ADDRESS"):
        conf.load({"BULLETIN_BOUNCE_ADDRESS": raw})


# --- The envelope on the wire (aiosmtpd on loopback).


@pytest.mark.django_db
def test_each_email_goes_with_its_deliverys_return_path_as_mail_from(
    smtp_settings: SmtpSink, bounce_address: str
) -> None:
    factories.employees(3)
    factories.fired(body="Hello", title="Office closed Friday")
    Dispatcher().run_until_idle()
    assert len(smtp_settings.received) == 3
    for delivery in Delivery.objects.select_related("employee"):
        (received,) = [
            r for r in smtp_settings.received if r.recipients == [delivery.employee.email]
        ]
        assert received.sender == verp.return_path(delivery.pk)
        assert verp.delivery_of(received.sender) == delivery.pk
        assert "Return-Path" not in received.message  # the final MTA writes it (RFC 5321 4.4)
        assert parseaddr(received.message["From"])[1] == "bulletin@localhost"


@pytest.mark.django_db
def test_without_a_bounce_address_the_sender_is_the_envelope_sender(
    smtp_settings: SmtpSink,
) -> None:
    factories.employees(1)
    factories.fired(body="Hello", title="Office closed Friday")
    Dispatcher().run_until_idle()
    (received,) = smtp_settings.received
    assert received.sender == "bulletin@localhost"


def test_a_test_send_without_a_delivery_returns_to_the_plain_bounce_address(
    smtp_settings: SmtpSink, bounce_address: str
) -> None:
    with EmailTransport() as transport:
        transport.send(_message(delivery_id=0))
    (received,) = smtp_settings.received
    assert received.sender == BOUNCES


def test_djangos_backends_get_the_return_path_as_the_envelope_sender(
    smtp_sink: SmtpSink, bounce_address: str, settings: Any
) -> None:
    """The console, file and provider backends take Django's message object; its from_email
    is the envelope sender (Django's SMTP backend shows it on the wire), the From header the
    announcement's sender."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    email = EmailTransport()._email(_message(delivery_id=81))
    connection = get_connection(
        "django.core.mail.backends.smtp.EmailBackend", host=smtp_sink.host, port=smtp_sink.port
    )
    connection.send_messages([email])
    (received,) = smtp_sink.received
    assert received.sender == verp.return_path(81)
    assert parseaddr(received.message["From"])[1] == "bulletin@localhost"
    assert "Return-Path" not in received.message


def _message(**fields: Any) -> Message:
    values: dict[str, Any] = {
        "idempotency_key": "bulletin-key-1",
        "title": "Office closed Friday",
        "text": "Hello",
        "html": "<p>Hello</p>",
        "recipient": ANA,
    }
    return Message(**(values | fields))
