"""HR actions through the one service every interface uses: roles, approval, versions, retry,
test sends and the audit log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from bulletin.dispatch import lifecycle
from bulletin.dispatch.planning import tick
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    AudienceKind,
    AuditEvent,
    Delivery,
    DeliveryState,
    Occurrence,
    ScheduleKind,
)
from bulletin.domain.roles import ANNOUNCER, APPROVER, EMPLOYEE
from tests import factories
from tests.harness import SmtpSink

pytestmark = pytest.mark.django_db


def person(django_user_model: Any, name: str, role: str) -> Any:
    return factories.person(name, role)


def draft(**fields: Any) -> Announcement:
    return Announcement(
        title=fields.pop("title", "Canteen reopens"),
        body="The canteen reopens on **Monday**.",
        channels=["email"],
        schedule_kind=ScheduleKind.CRON,
        cron=fields.pop("cron", "0 9 * * *"),
        timezone="Europe/London",
        **fields,
    )


def actions(announcement: Announcement) -> list[str]:
    return list(announcement.audit.order_by("at", "id").values_list("action", flat=True))


def test_an_employee_may_not_create_an_announcement(django_user_model: Any) -> None:
    eve = person(django_user_model, "eve", EMPLOYEE)
    with pytest.raises(PermissionDenied):
        lifecycle.create(draft(), eve)
    assert Announcement.objects.count() == 0


def test_an_announcer_creates_and_schedules_and_both_are_audited(ann: Any) -> None:
    item = lifecycle.create(draft(), ann)
    lifecycle.submit(item, ann)
    assert item.status == AnnouncementStatus.SCHEDULED and item.next_fire_at is not None
    assert actions(item) == ["created", "scheduled"]
    assert set(AuditEvent.objects.values_list("actor", flat=True)) == {ann.pk}


def test_with_approval_required_scheduling_waits_for_a_second_person(
    ann: Any, april: Any, approval_required: None
) -> None:
    item = lifecycle.create(draft(), ann)
    lifecycle.submit(item, ann)
    assert item.status == AnnouncementStatus.PENDING_APPROVAL and item.next_fire_at is None
    with pytest.raises(PermissionDenied):
        lifecycle.approve(item, ann)  # announcers cannot approve at all
    lifecycle.approve(item, april)
    item.refresh_from_db()
    assert item.status == AnnouncementStatus.SCHEDULED
    assert item.approvals.get().approved_by == april
    assert actions(item) == ["created", "submitted", "approved", "scheduled"]


def test_nobody_approves_their_own_announcement(
    django_user_model: Any, approval_required: None
) -> None:
    both = person(django_user_model, "both", ANNOUNCER)
    both.groups.add(Group.objects.get(name=APPROVER))
    both = django_user_model.objects.get(pk=both.pk)
    item = lifecycle.create(draft(), both)
    lifecycle.submit(item, both)
    with pytest.raises(PermissionDenied, match="you wrote or last edited"):
        lifecycle.approve(item, both)
    assert item.approvals.count() == 0


def test_editing_after_the_first_occurrence_changes_only_later_occurrences(ann: Any) -> None:
    factories.employees(2)
    start = (timezone.now() - timedelta(minutes=5)).replace(second=1, microsecond=0)
    with time_machine.travel(start, tick=False):
        item = lifecycle.create(draft(title="v1", cron="* * * * *"), ann)
        lifecycle.submit(item, ann)
    with time_machine.travel(start + timedelta(seconds=60), tick=False):
        tick()
        Dispatcher().run_until_idle()
    with time_machine.travel(start + timedelta(seconds=90), tick=False):
        lifecycle.edit(item, ann, title="v2")
    with time_machine.travel(start + timedelta(seconds=120), tick=False):
        tick()
    first, second = Occurrence.objects.filter(announcement=item).order_by("fire_at")[:2]
    assert (first.version.number, second.version.number) == (1, 2)
    assert set(Delivery.objects.filter(occurrence=first).values_list("state", flat=True)) == {
        DeliveryState.SENT
    }
    assert item.versions.count() == 2 and actions(item)[-1] == "edited"


def test_retrying_unknown_deliveries_needs_the_risk_confirmed(ann: Any) -> None:
    factories.employees(2)
    item = factories.fired()
    factories.put(Delivery.objects, state=DeliveryState.UNKNOWN)
    assert lifecycle.retry(item, ann) == 0  # failed only, by default
    assert lifecycle.retry(item, ann, include_unknown=True) == 2
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.PENDING}
    assert actions(item)[-1] == "retried"


def test_a_test_send_reaches_only_the_person_asking(ann: Any, smtp_settings: SmtpSink) -> None:
    factories.employees(3)
    item = lifecycle.create(draft(), ann)
    assert lifecycle.send_test(item, ann) == "ann@example.com"
    [received] = smtp_settings.received
    assert received.recipients == ["ann@example.com"]
    assert received.message["Subject"] == "[TEST] Canteen reopens"
    assert Delivery.objects.count() == 0 and Occurrence.objects.count() == 0


def test_a_cancelled_announcement_cannot_be_edited(ann: Any) -> None:
    item = lifecycle.create(draft(), ann)
    lifecycle.submit(item, ann)
    lifecycle.cancel(item, ann)
    with pytest.raises(ValidationError, match="cannot be edited"):
        lifecycle.edit(item, ann, title="again")


def test_pause_and_resume_are_audited_and_checked(ann: Any, april: Any) -> None:
    item = lifecycle.create(draft(), ann)
    lifecycle.submit(item, ann)
    with pytest.raises(PermissionDenied):
        lifecycle.pause(item, april)
    with pytest.raises(ValidationError, match="only a paused"):
        lifecycle.resume(item, ann)
    lifecycle.pause(item, ann)
    lifecycle.resume(item, ann)
    assert item.status == AnnouncementStatus.SCHEDULED
    assert actions(item)[-2:] == ["paused", "resumed"]


def test_text_edited_while_paused_needs_approval_before_it_resumes(
    ann: Any, april: Any, approval_required: None
) -> None:
    item = lifecycle.create(draft(), ann)
    lifecycle.submit(item, ann)
    lifecycle.approve(item, april)
    lifecycle.pause(item, ann)
    lifecycle.edit(item, ann, body="New text nobody approved.")
    lifecycle.resume(item, ann)
    assert item.status == AnnouncementStatus.PENDING_APPROVAL and item.next_fire_at is None
    lifecycle.approve(item, april)
    assert item.status == AnnouncementStatus.SCHEDULED


def test_changing_the_chosen_people_is_audited_naming_who_was_added_and_removed(ann: Any) -> None:
    first, second, third = factories.employees(3)
    item = lifecycle.create(draft(audience_kind=AudienceKind.LIST), ann)
    item.recipients.set([first, second])

    lifecycle.edit(item, ann, recipients=[second, third])

    assert set(item.recipients.all()) == {second, third}
    event = item.audit.get(action="edited")
    assert event.detail["fields"] == ["recipients"]
    assert event.detail["recipients_added"] == [third.pk]
    assert event.detail["recipients_removed"] == [first.pk]


def test_an_edit_of_the_text_and_the_people_names_both_and_a_refused_one_changes_neither(
    ann: Any,
) -> None:
    first, second = factories.employees(2)
    item = lifecycle.create(draft(audience_kind=AudienceKind.LIST), ann)
    item.recipients.set([first])

    with pytest.raises(ValidationError):
        lifecycle.edit(item, ann, recipients=[second], cron="not a cron")
    assert list(item.recipients.all()) == [first]

    item.refresh_from_db()
    lifecycle.edit(item, ann, recipients=[first, second], title="Canteen reopens at last")
    event = item.audit.get(action="edited")
    assert event.detail["fields"] == ["recipients", "title"]
    assert (event.detail["recipients_added"], event.detail["recipients_removed"]) == (
        [second.pk],
        [],
    )
