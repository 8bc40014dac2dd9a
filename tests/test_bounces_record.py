"""Recording what came back (bulletin.dispatch.bounces.record): each kind of report, matched by
a verified VERP key or by the returned Message-ID, and everything that must move nothing —
a duplicate, a refused key, a key naming another channel's or another person's delivery."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from bulletin.channels.bounce_report import BounceKind, BounceReport
from bulletin.channels.email import message_id
from bulletin.dispatch import bounces
from bulletin.domain.models import (
    AuditEvent,
    Bounce,
    Channel,
    ChannelOptOut,
    Delivery,
    DeliveryState,
    Suppression,
)
from bulletin.domain.records import AuditAction
from tests import factories

pytestmark = pytest.mark.django_db

USER_UNKNOWN = "smtp; 550 5.1.1 <person0@example.com>: Recipient address rejected: unknown"


@pytest.fixture
def sent() -> dict[str, Delivery]:
    """Three people, each sent one email and one inbox item; by address, their emails."""
    factories.employees(3)
    factories.fired(channels=("email", "inapp"))
    factories.put(Delivery.objects.all(), state=DeliveryState.SENT, sent_at=timezone.now())
    emails = Delivery.objects.filter(channel=Channel.EMAIL).select_related("employee")
    return {d.employee.email: d for d in emails}


def hard(**fields: Any) -> BounceReport:
    values = {
        "kind": BounceKind.HARD,
        "source": "pipe",
        "recipient": "person0@example.com",
        "status": "5.1.1",
        "diagnostic": USER_UNKNOWN,
    }
    return BounceReport(**(values | fields))


def state_of(delivery: Delivery) -> str:
    return Delivery.objects.get(pk=delivery.pk).state


def test_a_hard_bounce_matched_by_its_verp_key_bounces_the_delivery_and_suppresses_the_address(
    sent: dict[str, Delivery],
) -> None:
    email = sent["person0@example.com"]
    done = bounces.record(b"a DSN", hard(delivery_id=email.pk))

    assert done.outcome == "bounced" and done.delivery_id == email.pk
    moved = Delivery.objects.get(pk=email.pk)
    assert moved.state == DeliveryState.BOUNCED
    assert moved.last_error.startswith("bounced: 5.1.1 smtp; 550 5.1.1")
    suppression = Suppression.objects.get()
    assert suppression.address == "person0@example.com"
    assert suppression.employee_id == email.employee_id
    assert suppression.bounce_id == done.bounce_id and suppression.lifted_at is None
    assert suppression.reason.startswith("suppressed: 5.1.1 ")
    kept = Bounce.objects.get()
    assert bytes(kept.raw) == b"a DSN" and kept.kind == "hard" and kept.delivery_id == email.pk
    # The inbox item to the same person is not an email: it stays sent.
    assert Delivery.objects.filter(state=DeliveryState.SENT).count() == 5


def test_a_hard_bounce_without_a_key_is_matched_by_the_message_id_bulletin_wrote(
    sent: dict[str, Delivery],
) -> None:
    email = sent["person1@example.com"]
    quoted = message_id(email.idempotency_key)
    report = hard(recipient="Person1@Example.com", message_id=quoted)
    done = bounces.record(b"a DSN quoting the Message-ID", report)

    assert done.outcome == "bounced" and done.delivery_id == email.pk
    assert state_of(email) == DeliveryState.BOUNCED
    assert Suppression.objects.get().address == "person1@example.com"


def test_a_message_id_from_another_installation_matches_nothing(
    sent: dict[str, Delivery],
) -> None:
    email = sent["person1@example.com"]
    foreign = message_id(email.idempotency_key).replace(".email.", ".email.other", 1)
    done = bounces.record(b"x", hard(recipient="person1@example.com", message_id=foreign))
    assert done.outcome == "unmatched" and state_of(email) == DeliveryState.SENT


def another_email_to(address: str) -> Delivery:
    """A later announcement's email to ``address``, sent."""
    factories.fired(channels=("email",))
    emails = Delivery.objects.filter(channel=Channel.EMAIL, employee__email=address)
    latest = emails.latest("pk")
    factories.put(Delivery.objects.filter(pk=latest.pk), state=DeliveryState.SENT)
    return latest


def mailbox_full(delivery: Delivery) -> BounceReport:
    return hard(
        kind=BounceKind.SOFT, status="4.2.2", diagnostic="mailbox full", delivery_id=delivery.pk
    )


def test_soft_bounces_suppress_the_address_at_the_limit_within_the_window(
    sent: dict[str, Delivery], settings: Any
) -> None:
    email = sent["person0@example.com"]
    limit = settings.BULLETIN.soft_bounce_limit
    emails = [email, *(another_email_to("person0@example.com") for _ in range(limit - 1))]
    for n, each in enumerate(emails[:-1]):
        assert bounces.record(f"soft {n}".encode(), mailbox_full(each)).outcome == "soft"
    assert not Suppression.objects.exists()
    assert state_of(email) == DeliveryState.SENT  # soft bounces never move the state

    bounces.record(b"soft, once too often", mailbox_full(emails[-1]))
    assert Suppression.objects.get().reason == "suppressed: 4.2.2 mailbox full"
    assert Bounce.objects.filter(recipient="person0@example.com", kind="soft").count() == limit
    assert state_of(emails[-1]) == DeliveryState.SENT


def test_one_email_reported_soft_at_every_retry_counts_once_toward_the_limit(
    sent: dict[str, Delivery], settings: Any
) -> None:
    email = sent["person0@example.com"]
    soft = mailbox_full(email)
    for n in range(settings.BULLETIN.soft_bounce_limit + 2):
        assert bounces.record(f"deferred, retry {n}".encode(), soft).outcome == "soft"
    assert Bounce.objects.filter(delivery=email, kind="soft").count() == n + 1
    assert not Suppression.objects.exists()


def test_soft_bounces_spread_wider_than_the_window_suppress_nothing(
    sent: dict[str, Delivery], settings: Any
) -> None:
    limit, days = settings.BULLETIN.soft_bounce_limit, settings.BULLETIN.soft_bounce_days
    emails = [sent["person0@example.com"]]
    emails += [another_email_to("person0@example.com") for _ in range(limit - 1)]
    start = timezone.now()
    for n, each in enumerate(emails):
        with time_machine.travel(start + timedelta(days=(days + 1) * n), tick=False):
            assert bounces.record(f"soft {n}".encode(), mailbox_full(each)).outcome == "soft"
    assert not Suppression.objects.exists()


def test_a_complaint_opts_the_person_out_of_email_and_is_audited(
    sent: dict[str, Delivery],
) -> None:
    email = sent["person2@example.com"]
    report = BounceReport(
        kind=BounceKind.COMPLAINT,
        source="imap",
        recipient="person2@example.com",
        delivery_id=email.pk,
    )
    done = bounces.record(b"an ARF report", report)

    assert done.outcome == "complaint"
    assert ChannelOptOut.objects.filter(employee=email.employee, channel="email").exists()
    event = AuditEvent.objects.get(action=AuditAction.COMPLAINED)
    assert event.detail["bounce_id"] == done.bounce_id
    assert event.detail["employee_id"] == email.employee_id
    assert event.announcement_id == email.occurrence.announcement_id
    assert not Suppression.objects.exists() and state_of(email) == DeliveryState.SENT


def test_the_same_message_recorded_twice_is_one_bounce_and_changes_nothing_more(
    sent: dict[str, Delivery],
) -> None:
    email = sent["person0@example.com"]
    first = bounces.record(b"the same DSN", hard(delivery_id=email.pk))
    bounces.lift(Suppression.objects.get().pk, None)
    again = bounces.record(b"the same DSN", hard(delivery_id=email.pk))

    assert again == bounces.Recorded(first.bounce_id, email.pk, "duplicate")
    assert Bounce.objects.count() == 1
    assert not Suppression.objects.filter(lifted_at__isnull=True).exists()  # not suppressed anew


def test_a_refused_key_is_kept_unmatched_and_moves_nothing(sent: dict[str, Delivery]) -> None:
    email = sent["person0@example.com"]
    quoted = message_id(email.idempotency_key)  # even with a Message-ID that would match
    report = hard(key_refused="signature does not match", message_id=quoted)
    done = bounces.record(b"forged", report)

    assert done.outcome == "unmatched" and done.delivery_id is None
    kept = Bounce.objects.get()
    assert "VERP key refused: signature does not match" in kept.note
    assert state_of(email) == DeliveryState.SENT and not Suppression.objects.exists()


@pytest.mark.parametrize("which", ["an inbox delivery", "another person's address"])
def test_a_key_naming_a_delivery_that_is_not_this_email_is_unmatched(
    sent: dict[str, Delivery], which: str
) -> None:
    email = sent["person0@example.com"]
    if which == "an inbox delivery":
        named = Delivery.objects.get(channel=Channel.INAPP, employee=email.employee)
        report = hard(delivery_id=named.pk)
    else:
        named = email
        report = hard(delivery_id=email.pk, recipient="person1@example.com")
    done = bounces.record(b"mismatched", report)

    assert done.outcome == "unmatched"
    assert state_of(named) == DeliveryState.SENT and not Suppression.objects.exists()
    assert Delivery.objects.filter(state=DeliveryState.SENT).count() == 6


def test_an_unreadable_message_is_kept_truncated_and_moves_nothing(
    sent: dict[str, Delivery], settings: Any
) -> None:
    from dataclasses import replace

    if hasattr(settings.BULLETIN, "bounce_max_bytes"):
        settings.BULLETIN = replace(settings.BULLETIN, bounce_max_bytes=1000)
        limit = 1000
    else:
        limit = bounces.DEFAULT_MAX_BYTES
    raw = b"x" * (limit + 10)
    report = BounceReport(kind=BounceKind.UNREADABLE, source="maildir", note="too big")
    done = bounces.record(raw, report)

    assert done.outcome == "unreadable"
    kept = Bounce.objects.get()
    assert len(bytes(kept.raw)) == limit and kept.raw_size == limit + 10
    assert Delivery.objects.filter(state=DeliveryState.SENT).count() == 6


def test_an_out_of_office_reply_is_ignored_and_not_kept(sent: dict[str, Delivery]) -> None:
    report = BounceReport(kind=BounceKind.AUTO_REPLY, source="pipe")
    assert bounces.record(b"I am away", report) == bounces.Recorded(None, None, "ignored")
    assert not Bounce.objects.exists()


def test_a_bounce_for_an_interrupted_delivery_settles_it_as_bounced(
    sent: dict[str, Delivery],
) -> None:
    email = sent["person0@example.com"]
    factories.put(Delivery.objects.filter(pk=email.pk), state=DeliveryState.UNKNOWN)
    assert bounces.record(b"dsn", hard(delivery_id=email.pk)).outcome == "bounced"
    assert state_of(email) == DeliveryState.BOUNCED


def test_a_second_hard_bounce_of_a_bounced_delivery_is_kept_and_suppresses_once(
    sent: dict[str, Delivery],
) -> None:
    email = sent["person0@example.com"]
    bounces.record(b"first dsn", hard(delivery_id=email.pk))
    bounces.record(b"second dsn", hard(delivery_id=email.pk))
    assert Bounce.objects.count() == 2 and Suppression.objects.count() == 1
    assert state_of(email) == DeliveryState.BOUNCED
