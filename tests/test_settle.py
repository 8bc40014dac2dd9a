"""`bulletin settle`: a person records what became of an `unknown` delivery — it arrived, it did
not, or send it again — and the decision is audited; nothing but `unknown` rows ever moves."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from bulletin.channels.email import message_id
from bulletin.dispatch import ledger
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import Attempt, AttemptOutcome, AuditEvent, Delivery, DeliveryState
from bulletin.domain.records import AuditAction
from tests import factories
from tests.harness import Installation, SmtpSink

LEASE = timedelta(seconds=60)


def interrupted(count: int = 1) -> list[Delivery]:
    """``count`` email deliveries whose worker died mid-send: the reaper made them unknown."""
    factories.employees(count + 1)
    factories.fired()
    token, now = ledger.new_token(), timezone.now()
    ids = ledger.claim(token, count, now, LEASE)
    ledger.begin_attempts(ids, token, now, LEASE)
    ledger.reap(now + LEASE + timedelta(seconds=1), deduplicating=[])
    rows = list(Delivery.objects.filter(pk__in=ids).order_by("pk"))
    assert {row.state for row in rows} == {DeliveryState.UNKNOWN}
    return rows


def settle(*arguments: object) -> str:
    out = io.StringIO()
    call_command("settle", *map(str, arguments), stdout=out)
    return out.getvalue().strip()


@pytest.mark.django_db
def test_settling_as_sent_marks_it_sent_when_its_attempt_began_and_audits_the_decision() -> None:
    (row,) = interrupted()
    began = Attempt.objects.get(delivery=row, outcome=AttemptOutcome.INTERRUPTED).started_at

    output = settle(row.pk, "--sent", "--reason", "found in the relay's log")

    assert output == "settled 1 unknown delivery: sent"
    row.refresh_from_db()
    assert (row.state, row.sent_at, row.last_error) == (DeliveryState.SENT, began, "")
    event = AuditEvent.objects.get(action="settled")
    assert event.announcement == row.occurrence.announcement and event.actor is None
    assert event.detail == {
        "delivery_ids": [row.pk],
        "settled_as": "sent",
        "reason": "found in the relay's log",
        "via": "command line",
    }


@pytest.mark.django_db
def test_settling_as_failed_keeps_it_from_ever_being_sent() -> None:
    (row,) = interrupted()

    settle(row.pk, "--failed")

    row.refresh_from_db()
    assert row.state == DeliveryState.FAILED
    assert row.last_error == "settled by hand: did not arrive"
    assert AuditEvent.objects.get(action="settled").detail["settled_as"] == "failed"
    assert Dispatcher().run_until_idle() == 1  # the other person's delivery only
    row.refresh_from_db()
    assert row.state == DeliveryState.FAILED


@pytest.mark.django_db
def test_settling_for_a_resend_sends_it_once_more_with_the_same_message_id(
    smtp_settings: SmtpSink,
) -> None:
    (row,) = interrupted()

    settle(row.pk, "--resend")
    Dispatcher().run_until_idle()

    row.refresh_from_db()
    assert (row.state, row.attempts) == (DeliveryState.SENT, 2)
    assert smtp_settings.message_ids()[message_id(row.idempotency_key)] == 1
    event = AuditEvent.objects.get(action=AuditAction.RETRIED)
    assert event.detail["deliveries"] == 1 and event.detail["states"] == ["unknown"]


@pytest.mark.django_db
def test_a_delivery_that_is_not_unknown_is_refused_and_nothing_named_changes() -> None:
    (row,) = interrupted()
    other = Delivery.objects.exclude(pk=row.pk).get()

    with pytest.raises(CommandError) as refused:
        settle(row.pk, other.pk, "--sent")

    assert str(refused.value) == (
        f"only an unknown delivery can be settled, and {other.pk} is pending; nothing was changed"
    )
    row.refresh_from_db()
    assert row.state == DeliveryState.UNKNOWN
    assert not AuditEvent.objects.filter(action="settled").exists()


@pytest.mark.django_db
def test_the_list_names_each_unknown_delivery_with_its_message_id() -> None:
    rows = interrupted(2)

    lines = settle("--list").splitlines()

    assert [line.split("\t")[:4] for line in lines] == [
        [str(row.pk), "email", row.employee.email, message_id(row.idempotency_key)]
        for row in rows
        if row.employee is not None
    ]
    assert all(line.endswith(ledger.INTERRUPTED) for line in lines)


def test_settling_an_unknown_id_on_the_command_line_is_one_line_and_exit_1(
    installation: Installation,
) -> None:
    missing = installation.run("settle", "999", "--sent", check=False)
    no_ids = installation.run("settle", "--resend", check=False)

    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == "bulletin settle: no delivery 999; nothing was changed\n"
    assert (no_ids.returncode, no_ids.stderr) == (
        2,
        "bulletin settle: --resend needs at least one DELIVERY_ID\n",
    )
