"""`bulletin prune`: old settled deliveries go with their attempts; the occurrence ledger, unknown
and unfinished deliveries and inbox items stay, and nothing pruned is ever sent again."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from bulletin.dispatch.planning import tick
from bulletin.dispatch.retention import prune
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    Attempt,
    AttemptOutcome,
    Channel,
    Delivery,
    DeliveryState,
    Employee,
    InboxItem,
    Occurrence,
    OccurrenceState,
    ScheduleKind,
)
from tests import factories
from tests.harness import Installation, SmtpSink

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=91)
RECENT = NOW - timedelta(days=89)


def an_occurrence() -> Occurrence:
    announcement = Announcement.objects.create(
        title="Benefits",
        body="Hi",
        channels=["email", "inapp"],
        schedule_kind=ScheduleKind.CRON,
        cron="0 9 * * 1",
        timezone="UTC",
        status=AnnouncementStatus.SCHEDULED,
    )
    return Occurrence.objects.create(
        announcement=announcement, zone="UTC", fire_at=OLD, state=OccurrenceState.FANNED_OUT
    )


def delivery(
    occurrence: Occurrence,
    name: str,
    state: DeliveryState,
    changed: datetime = OLD,
    channel: str = Channel.EMAIL,
    attempts: int = 0,
) -> Delivery:
    """A delivery last changed at ``changed``, with ``attempts`` history rows."""
    person = Employee.objects.create(email=f"{name}@example.com", name=name, timezone="UTC")
    row = Delivery.objects.create(
        occurrence=occurrence, employee=person, channel=channel, state=state, due_at=changed
    )
    for number in range(1, attempts + 1):
        Attempt.objects.create(
            delivery=row, number=number, started_at=changed, outcome=AttemptOutcome.RETRY
        )
    Delivery.objects.filter(pk=row.pk).update(updated_at=changed)
    return row


def in_inbox(row: Delivery) -> Delivery:
    assert row.employee is not None
    InboxItem.objects.create(
        delivery=row,
        employee=row.employee,
        announcement=row.occurrence.announcement,
        title="Benefits",
        html="<p>Hi</p>",
        created_at=OLD,
    )
    return row


@pytest.fixture
def ledger(db: None) -> dict[str, Delivery]:
    """One old occurrence with a delivery in every state, most of them changed 91 days ago."""
    occurrence = an_occurrence()
    return {
        "sent": delivery(occurrence, "sent", DeliveryState.SENT, attempts=2),
        "failed": delivery(occurrence, "failed", DeliveryState.FAILED, attempts=1),
        "skipped": delivery(occurrence, "skipped", DeliveryState.SKIPPED),
        "bounced": delivery(occurrence, "bounced", DeliveryState.BOUNCED, attempts=1),
        "inapp failed": delivery(
            occurrence, "inappfailed", DeliveryState.FAILED, channel=Channel.INAPP
        ),
        "unknown": delivery(occurrence, "unknown", DeliveryState.UNKNOWN, attempts=1),
        "pending": delivery(occurrence, "pending", DeliveryState.PENDING, attempts=1),
        "claimed": delivery(occurrence, "claimed", DeliveryState.CLAIMED),
        "sending": delivery(occurrence, "sending", DeliveryState.SENDING, attempts=1),
        "inbox": in_inbox(
            delivery(occurrence, "inbox", DeliveryState.SENT, channel=Channel.INAPP, attempts=1)
        ),
        "recent sent": delivery(
            occurrence, "recent", DeliveryState.SENT, changed=RECENT, attempts=1
        ),
    }


GONE = ("sent", "failed", "skipped", "bounced", "inapp failed")
KEPT = ("unknown", "pending", "claimed", "sending", "inbox", "recent sent")


def prune_command(*arguments: str) -> str:
    out = io.StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("prune", *arguments, stdout=out)
    return out.getvalue().strip()


def test_old_settled_deliveries_go_with_their_attempts_and_everything_else_stays(
    ledger: dict[str, Delivery],
) -> None:
    kept_attempts = set(Attempt.objects.filter(delivery__in=[ledger[k] for k in KEPT]))

    summary = prune_command("--older-than", "90d")

    assert summary == "pruned: 5 deliveries, 4 attempts (last changed before 2030-03-03T12:00:00Z)"
    assert set(Delivery.objects.all()) == {ledger[name] for name in KEPT}
    assert set(Attempt.objects.all()) == kept_attempts
    assert Occurrence.objects.count() == 1
    assert InboxItem.objects.get().delivery == ledger["inbox"]


def test_a_dry_run_counts_what_would_go_and_deletes_nothing(ledger: dict[str, Delivery]) -> None:
    summary = prune_command("--older-than", "12w", "--dry-run")

    # 12 weeks reach back past the "recent" delivery (89 days old) as well.
    assert summary == (
        "would prune: 6 deliveries, 5 attempts (last changed before 2030-03-09T12:00:00Z)"
    )
    assert Delivery.objects.count() == len(ledger)
    assert Attempt.objects.count() == 9


@pytest.mark.django_db
def test_prune_keeps_taking_batches_until_nothing_old_is_left() -> None:
    occurrence = an_occurrence()
    for n in range(5):
        delivery(occurrence, f"p{n}", DeliveryState.SENT, attempts=1)

    pruned = prune(NOW - timedelta(days=90), batch_size=2)

    assert (pruned.deliveries, pruned.attempts) == (5, 5)
    assert not Delivery.objects.exists() and not Attempt.objects.exists()


@pytest.mark.django_db
def test_a_recurring_slot_whose_deliveries_were_pruned_is_never_sent_again(
    smtp_settings: SmtpSink,
) -> None:
    factories.employees(3)
    slot = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)  # 09:00 in London, which is on UTC in winter
    with time_machine.travel(slot - timedelta(hours=1), tick=False):
        item = factories.announcement(now=timezone.now(), cron="0 9 * * *", grace=timedelta(days=1))
    with time_machine.travel(slot + timedelta(seconds=30), tick=False):
        tick()
        Dispatcher().run_until_idle()
    assert len(smtp_settings.received) == 3

    with time_machine.travel(slot + timedelta(hours=3), tick=False):
        call_command("prune", "--older-than", "1h", stdout=io.StringIO())
        assert not Delivery.objects.exists()
        tick()
        # A planner that looks at the slot again (a stale tick, a cursor restored from a
        # backup): within the grace it would send the slot anew were its occurrence gone.
        Announcement.objects.filter(pk=item.pk).update(
            planned_until=slot - timedelta(minutes=1), next_fire_at=slot
        )
        tick()
        Dispatcher().run_until_idle()
    assert len(smtp_settings.received) == 3
    assert not Delivery.objects.exists()
    assert list(Occurrence.objects.values_list("fire_at", flat=True)) == [slot]

    with time_machine.travel(slot + timedelta(days=1, seconds=30), tick=False):
        tick()
        Dispatcher().run_until_idle()
    assert len(smtp_settings.received) == 6  # the next day's slot still goes out
    assert set(smtp_settings.message_ids().values()) == {1}


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        (
            ["--older-than", "90x"],
            "argument --older-than: '90x' is not a duration: "
            "use a whole number and h, d or w (like 12h, 90d, 2w)",
        ),
        (["--older-than", "0d"], "argument --older-than: '0d' must be more than zero"),
        (["--older-than=-5d"], "argument --older-than: '-5d' must be more than zero"),
        ([], "the following arguments are required: --older-than"),
    ],
    ids=["no-unit", "zero", "negative", "missing"],
)
def test_a_bad_duration_is_one_line_on_stderr_and_exit_2(
    installation: Installation, arguments: list[str], error: str
) -> None:
    result = installation.run("prune", *arguments, check=False)

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"bulletin prune: error: {error}\n"


def test_prune_on_the_command_line_prints_one_summary_line(installation: Installation) -> None:
    result = installation.run("prune", "--older-than", "12h")

    assert result.stderr == ""
    assert result.stdout.startswith("pruned: 0 deliveries, 0 attempts (last changed before ")
    assert len(result.stdout.splitlines()) == 1
