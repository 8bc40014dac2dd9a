"""Reminders: to exactly the people an occurrence reached who have not acknowledged, once per
request however it is repeated, audited, and counted for the occurrence they remind of."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from bulletin.dispatch.fanout import fan_out_planned
from bulletin.dispatch.reminders import ReminderRefused, _create, remind, remind_automatically
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain import engagement
from bulletin.domain.models import (
    Announcement,
    AuditEvent,
    Delivery,
    Employee,
    Engagement,
    InboxItem,
    Occurrence,
    OccurrenceState,
)
from bulletin.domain.records import ApiToken, AuditAction
from bulletin.interfaces.api.auth import SCOPES
from bulletin.interfaces.hr.engagement import figures
from tests import factories

pytestmark = pytest.mark.django_db


def sent_to(people: int = 4, **fields: Any) -> Occurrence:
    """An announcement asking for acknowledgement, fired once and sent (inbox and email)."""
    factories.employees(people)
    fields.setdefault("channels", ("inapp", "email"))
    factories.fired(requires_ack=True, **fields)
    Dispatcher().run_until_idle()
    return Occurrence.objects.get(reminder_of__isnull=True)


def staff() -> list[Employee]:
    return list(Employee.objects.order_by("pk"))


def reached_by(reminder: Occurrence) -> dict[str, set[str]]:
    """Channel → the emails a reminder's deliveries go to."""
    found: dict[str, set[str]] = {}
    for channel, email in Delivery.objects.filter(occurrence=reminder).values_list(
        "channel", "employee__email"
    ):
        found.setdefault(channel, set()).add(email)
    return found


def test_a_reminder_reaches_exactly_those_who_have_not_acknowledged() -> None:
    root = sent_to(4)
    first, second, *rest = staff()
    engagement.acknowledged(root.pk, first.pk, "email", timezone.now())
    engagement.opened(root.pk, second.pk, timezone.now())  # read, not acknowledged
    made = remind(root, ["email"], "k1", timezone.now())
    assert made.created
    waiting = {second.email, *(person.email for person in rest)}
    assert reached_by(made.occurrence) == {"email": waiting}
    assert made.occurrence.delivery_count == 3
    assert made.occurrence.state == OccurrenceState.FANNED_OUT


def test_a_reminder_goes_over_the_channels_chosen_for_it() -> None:
    root = sent_to(2)
    made = remind(root, ["inapp", "email"], "k1", timezone.now())
    assert set(reached_by(made.occurrence)) == {"inapp", "email"}
    assert made.occurrence.channels == ["email", "inapp"]


def test_someone_who_was_never_sent_it_is_not_reminded() -> None:
    root = sent_to(3)
    (late_joiner,) = factories.employees(1, prefix="joiner")
    failed = staff()[0]
    factories.put(Delivery.objects.filter(occurrence=root, employee=failed), state="failed")
    made = remind(root, ["email"], "k1", timezone.now())
    reached = reached_by(made.occurrence)["email"]
    assert late_joiner.email not in reached and failed.email not in reached
    assert len(reached) == 2


def test_whoever_acknowledges_before_the_reminder_fans_out_is_not_reminded() -> None:
    root = sent_to(3)
    reminder = _create(root, ["email"], "k1", timezone.now())  # made; fan-out not yet run
    engagement.acknowledged(root.pk, staff()[0].pk, "inapp", timezone.now())
    fan_out_planned(timezone.now())
    assert len(reached_by(reminder)["email"]) == 2


def test_the_same_request_again_makes_no_second_reminder() -> None:
    root = sent_to(3)
    first = remind(root, ["email"], "double-click", timezone.now())
    again = remind(root, ["email"], "double-click", timezone.now())
    assert first.created and not again.created
    assert again.occurrence.pk == first.occurrence.pk
    assert Occurrence.objects.filter(reminder_of=root).count() == 1
    assert Delivery.objects.filter(occurrence=first.occurrence).count() == 3
    events = AuditEvent.objects.filter(action=AuditAction.REMINDED)
    assert [event.detail["occurrence_id"] for event in events] == [first.occurrence.pk]


def test_another_request_makes_another_reminder_to_whoever_is_still_waiting() -> None:
    root = sent_to(3)
    remind(root, ["email"], "monday", timezone.now())
    Dispatcher().run_until_idle()
    engagement.acknowledged(root.pk, staff()[0].pk, "email", timezone.now())
    later = remind(root, ["email"], "wednesday", timezone.now())
    assert later.created and later.occurrence.delivery_count == 2


def test_a_reminder_says_so_and_its_acknowledgement_counts_for_the_occurrence() -> None:
    root = sent_to(1, channels=("inapp",))
    reminder = remind(root, ["inapp", "email"], "k1", timezone.now()).occurrence
    mail.outbox.clear()
    Dispatcher().run_until_idle()
    (email,) = mail.outbox
    assert email.subject.startswith("Reminder: ")
    item = InboxItem.objects.get(delivery__occurrence=reminder)
    assert item.title.startswith("Reminder: ")
    engagement.acknowledged(reminder.pk, staff()[0].pk, "inapp", timezone.now())
    (row,) = Engagement.objects.all()
    assert row.occurrence_id == root.pk and row.acknowledged_at is not None
    # Both the original inbox item and the reminder's show it acknowledged.
    assert not InboxItem.objects.filter(acknowledged_at__isnull=True).exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"requires_ack": False}, "occurrence"),
        ({}, "channels"),
    ],
)
def test_a_reminder_that_cannot_be_sent_is_refused_naming_why(
    change: dict[str, Any], field: str
) -> None:
    root = sent_to(2)
    Announcement.objects.filter(pk=root.announcement_id).update(**change)
    root.refresh_from_db()
    channels = ["email"] if change else ["fax"]
    with pytest.raises(ReminderRefused) as refused:
        remind(root, channels, "k1", timezone.now())
    assert refused.value.field == field
    assert not Occurrence.objects.filter(reminder_of__isnull=False).exists()


def test_an_occurrence_not_yet_sent_cannot_be_reminded_of() -> None:
    root = sent_to(1)
    Occurrence.objects.filter(pk=root.pk).update(state=OccurrenceState.PLANNED)
    root.refresh_from_db()
    with pytest.raises(ReminderRefused, match="not been sent"):
        remind(root, ["email"], "k1", timezone.now())


# --- automatic reminders ----------------------------------------------------------------------


def test_automatic_reminders_come_every_n_days_at_most_m_times_once_each() -> None:
    root = sent_to(2, remind_after_days=2, remind_times=2)
    fired = root.fire_at
    made = []
    for days in (1, 2, 2, 3, 4, 4, 6, 9):
        with time_machine.travel(fired + timedelta(days=days, minutes=1), tick=False):
            made.append(remind_automatically(timezone.now()))
    assert made == [0, 1, 0, 0, 1, 0, 0, 0]
    keys = Occurrence.objects.filter(reminder_of=root).values_list("reminder_key", flat=True)
    assert sorted(keys) == ["auto-1", "auto-2"]


def test_no_automatic_reminder_once_everyone_has_acknowledged() -> None:
    root = sent_to(2, remind_after_days=1, remind_times=1)
    for person in staff():
        engagement.acknowledged(root.pk, person.pk, "email", timezone.now())
    with time_machine.travel(root.fire_at + timedelta(days=1, minutes=1), tick=False):
        remind_automatically(timezone.now())
    (reminder,) = Occurrence.objects.filter(reminder_of=root)
    assert reminder.delivery_count == 0


# --- HR's button and the API ------------------------------------------------------------------


def remind_url(root: Occurrence) -> str:
    return f"/hr/{root.announcement_id}/remind/"


def test_hrs_remind_button_sends_one_reminder_however_often_the_form_is_sent(
    client: Client, ann: Any
) -> None:
    root = sent_to(3)
    client.force_login(ann)
    form = {"occurrence": root.pk, "channels": ["email"], "token": "drawn-with-the-page"}
    first = client.post(remind_url(root), form, follow=True)
    second = client.post(remind_url(root), form, follow=True)
    assert "Reminder queued: 3 deliveries" in first.content.decode()
    assert "already sent" in second.content.decode()
    (reminder,) = Occurrence.objects.filter(reminder_of=root)
    assert AuditEvent.objects.get(action=AuditAction.REMINDED).actor == ann
    assert reminder.delivery_count == 3


def test_an_employee_cannot_send_reminders(client: Client, eve: Any) -> None:
    root = sent_to(1)
    client.force_login(eve)
    form = {"occurrence": root.pk, "channels": ["email"], "token": "t"}
    answer = client.post(remind_url(root), form)
    assert answer.status_code in (302, 403)
    assert not Occurrence.objects.filter(reminder_of=root).exists()


def test_the_api_makes_one_reminder_per_idempotency_key(client: Client, api_token: Any) -> None:
    root = sent_to(2)
    url = f"/api/v1/occurrences/{root.pk}/reminders"
    headers = {"Authorization": f"Bearer {api_token}", "Idempotency-Key": "retry-safe"}
    body = {"channels": ["email"]}
    first = client.post(url, body, content_type="application/json", headers=headers)
    again = client.post(url, body, content_type="application/json", headers=headers)
    assert (first.status_code, again.status_code) == (201, 200), first.content
    assert first.json()["occurrence_id"] == again.json()["occurrence_id"]
    assert (first.json()["created"], again.json()["created"]) == (True, False)
    assert first.json()["deliveries"] == 2


def test_the_api_refuses_a_reminder_without_an_idempotency_key(
    client: Client, api_token: Any
) -> None:
    root = sent_to(1)
    answer = client.post(
        f"/api/v1/occurrences/{root.pk}/reminders",
        {"channels": ["email"]},
        content_type="application/json",
        headers={"Authorization": f"Bearer {api_token}"},
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["field"] == "Idempotency-Key"
    missing = client.post(
        "/api/v1/occurrences/999999/reminders",
        {"channels": ["email"]},
        content_type="application/json",
        headers={"Authorization": f"Bearer {api_token}", "Idempotency-Key": "k"},
    )
    assert missing.status_code == 404


@pytest.fixture
def api_token(ann: Any) -> str:
    _, raw = ApiToken.issue(ann, "tests", list(SCOPES))
    return raw


def test_hrs_list_of_one_send_offers_remind_them_and_reminders_are_not_sends_of_their_own(
    client: Client, ann: Any
) -> None:
    root = sent_to(3)
    client.force_login(ann)
    page = client.get(f"/hr/{root.announcement_id}/not-acknowledged/?occurrence={root.pk}")
    text = page.content.decode()
    assert "Remind the 3 people who have not acknowledged" in text
    token = re.search(r'name="token" value="([^"]+)"', text)
    assert token
    form = {"occurrence": root.pk, "channels": ["email"], "token": token.group(1)}
    client.post(remind_url(root), form)
    Dispatcher().run_until_idle()
    # The reminder's people are not listed again as a send of their own.
    listed = client.get(f"/hr/{root.announcement_id}/not-acknowledged/")
    assert '<span id="not-acknowledged-count">3</span>' in listed.content.decode()
    summary = figures(Announcement.objects.get(pk=root.announcement_id))
    assert list(summary.per_occurrence) == [root.pk]
    assert summary.per_occurrence[root.pk].delivered["email"] == 6  # 3 sent, 3 reminded


# --- asking for automatic reminders -----------------------------------------------------------


def test_hr_api_and_command_line_set_automatic_reminders_and_refuse_them_without_acknowledgement(
    client: Client, ann: Any, api_token: str, tmp_path: Any
) -> None:
    client.force_login(ann)
    form = factories.compose_form(requires_ack="on", remind_after_days="3", remind_times="2")
    assert client.post("/hr/new/", form).status_code == 302
    made = Announcement.objects.get()
    assert (made.remind_after_days, made.remind_times) == (3, 2)
    # Without "ask to acknowledge", no reminders are kept.
    client.post("/hr/new/", factories.compose_form(title="Other", remind_after_days="3"))
    assert Announcement.objects.get(title="Other").remind_after_days is None

    body = factories.api_announcement(requires_ack=True, remind_after_days=7, remind_times=1)
    headers = {"Authorization": f"Bearer {api_token}"}
    created = client.post(
        "/api/v1/announcements", body, content_type="application/json", headers=headers
    )
    assert created.status_code == 201 and created.json()["remind_after_days"] == 7
    refused = client.post(
        "/api/v1/announcements",
        factories.api_announcement(remind_after_days=7),
        content_type="application/json",
        headers=headers,
    )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["field"] == "remind_after_days"
    too_many = factories.api_announcement(requires_ack=True, remind_after_days=1, remind_times=9)
    answer = client.post(
        "/api/v1/announcements", too_many, content_type="application/json", headers=headers
    )
    assert answer.status_code == 422

    with pytest.raises(CommandError, match="--remind-after-days"):
        factories.announce_cli(
            tmp_path, "--cron", "0 9 * * *", "--tz", "UTC", "--remind-after-days", "2"
        )
    item = factories.announce_cli(
        tmp_path, "--cron", "0 9 * * *", "--tz", "UTC", "--requires-ack",
        "--remind-after-days", "2", "--remind-times", "3",
    )  # fmt: skip
    assert (item.remind_after_days, item.remind_times) == (2, 3)


def test_a_reminder_whose_fan_out_fails_is_left_for_the_next_tick(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = sent_to(2)

    def broken(*args: Any) -> int:
        raise RuntimeError("database went away")

    monkeypatch.setattr("bulletin.dispatch.reminders.fan_out", broken)
    made = remind(root, ["email"], "k1", timezone.now())
    assert made.created and made.occurrence.state == OccurrenceState.PLANNED
    monkeypatch.undo()
    fan_out_planned(timezone.now())
    made.occurrence.refresh_from_db()
    assert made.occurrence.state == OccurrenceState.FANNED_OUT
    assert made.occurrence.delivery_count == 2
