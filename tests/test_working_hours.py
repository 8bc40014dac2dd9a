"""Delivery within working hours, through the planner and the dispatcher with the clock moved
(time-machine): a held delivery is the same row with a later ``due_at``, sent once when its
recipient's window opens — or never, if the announcement is cancelled meanwhile."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError

from bulletin import conf
from bulletin.dispatch import lifecycle
from bulletin.dispatch.holding import waiting_at
from bulletin.dispatch.planning import tick
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import (
    Announcement,
    AuditEvent,
    Channel,
    Delivery,
    DeliveryState,
    Employee,
    InboxItem,
    Place,
)
from bulletin.domain.records import AuditAction
from tests import factories

pytestmark = pytest.mark.django_db


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def at(moment: datetime) -> Any:
    return time_machine.travel(moment, tick=False)


def tick_and_dispatch(moment: datetime) -> None:
    with at(moment):
        tick()
        Dispatcher().run_until_idle()


def one_off(fire: datetime, **fields: Any) -> Announcement:
    """A working-hours announcement to everyone's inbox at ``fire`` (UTC), made a day before."""
    fields.setdefault("channels", ("inapp",))
    fields.setdefault("working_hours", True)
    with at(fire - timedelta(days=1)):
        return factories.announcement(
            now=fire - timedelta(days=1),
            at=fire.strftime("%Y-%m-%dT%H:%M"),
            zone="UTC",
            **fields,
        )


def staff(location: str, zone: str, country: str, subdivision: str = "", n: int = 1) -> None:
    factories.location(location, zone=zone, country=country, subdivision=subdivision)
    factories.employees(n, zone=zone, prefix=location.lower().replace(" ", ""), location=location)


def received() -> Counter[str]:
    """How many inbox items each employee (by email) has."""
    return Counter(InboxItem.objects.values_list("employee__email", flat=True))


def due_by_location() -> dict[str | None, tuple[str, datetime, str]]:
    rows = Delivery.objects.values_list("employee__location", "state", "due_at", "hold_reason")
    return {location: (state, due, reason) for location, state, due, reason in rows}


FRIDAY_2300_UTC = utc(2024, 12, 6, 23)


@pytest.fixture
def three_zones(db: None) -> None:
    staff("London", "Europe/London", "GB", "ENG")
    staff("New York", "America/New_York", "US", "NY")
    staff("Tokyo", "Asia/Tokyo", "JP")


def test_a_friday_evening_announcement_reaches_monday_0800_in_three_zones(
    three_zones: None,
) -> None:
    one_off(FRIDAY_2300_UTC)
    tick_and_dispatch(FRIDAY_2300_UTC + timedelta(seconds=30))
    assert due_by_location() == {
        "London": ("held", utc(2024, 12, 9, 8), "after working hours, weekend"),
        "New York": ("held", utc(2024, 12, 9, 13), "after working hours, weekend"),
        "Tokyo": ("held", utc(2024, 12, 8, 23), "weekend"),
    }
    tick_and_dispatch(utc(2024, 12, 8, 22, 59))  # a minute before Tokyo's Monday 08:00
    assert received() == {}
    tick_and_dispatch(utc(2024, 12, 8, 23, 0, 30))
    assert received() == {"tokyo0@example.com": 1}
    tick_and_dispatch(utc(2024, 12, 9, 8, 0, 30))
    tick_and_dispatch(utc(2024, 12, 9, 13, 0, 30))
    tick_and_dispatch(utc(2024, 12, 10, 9))  # and nothing more, ever
    assert received() == {
        "london0@example.com": 1,
        "newyork0@example.com": 1,
        "tokyo0@example.com": 1,
    }
    assert Delivery.objects.count() == 3
    assert set(Delivery.objects.values_list("state", "attempts")) == {("sent", 1)}


def test_a_holiday_in_one_country_holds_only_its_people_at_the_same_instant(db: None) -> None:
    staff("Pune", "Asia/Kolkata", "IN", "MH", n=2)
    staff("London", "Europe/London", "GB", "ENG", n=2)
    one_off(utc(2024, 10, 31, 9))
    tick_and_dispatch(utc(2024, 10, 31, 9, 0, 30))
    assert received() == {"london0@example.com": 1, "london1@example.com": 1}
    assert due_by_location()["Pune"] == ("held", utc(2024, 11, 1, 2, 30), "Diwali")
    tick_and_dispatch(utc(2024, 11, 1, 2, 30, 30))
    assert sorted(received().values()) == [1, 1, 1, 1]


def test_a_dst_weekend_followed_by_a_holiday_opens_on_tuesday_at_0800_bst(db: None) -> None:
    staff("London", "Europe/London", "GB", "ENG")
    one_off(utc(2024, 3, 28, 18, 30))
    tick_and_dispatch(utc(2024, 3, 28, 18, 30, 30))
    state, due, reason = due_by_location()["London"]
    assert (state, due) == ("held", utc(2024, 4, 2, 7))
    assert reason == "after working hours, Good Friday, weekend, Easter Monday"
    tick_and_dispatch(utc(2024, 4, 1, 12))  # Easter Monday noon: still a holiday
    assert received() == {}
    tick_and_dispatch(utc(2024, 4, 2, 7, 0, 30))
    assert received() == {"london0@example.com": 1}


def test_a_recipient_local_schedule_at_0700_waits_an_hour_in_each_zone(db: None) -> None:
    staff("London", "Europe/London", "GB", "ENG")
    staff("Tokyo", "Asia/Tokyo", "JP")
    start = utc(2024, 12, 8, 12)  # Sunday
    with at(start):
        factories.announcement(
            now=start,
            cron="0 7 * * 1-5",
            per_recipient_zone=True,
            channels=("inapp",),
            working_hours=True,
        )
    tick_and_dispatch(utc(2024, 12, 8, 22, 0, 30))  # Mon 07:00 JST
    assert due_by_location()["Tokyo"] == ("held", utc(2024, 12, 8, 23), "before working hours")
    tick_and_dispatch(utc(2024, 12, 8, 23, 0, 30))
    tick_and_dispatch(utc(2024, 12, 9, 7, 0, 30))  # Mon 07:00 GMT
    assert due_by_location()["London"] == ("held", utc(2024, 12, 9, 8), "before working hours")
    assert received() == {"tokyo0@example.com": 1}
    tick_and_dispatch(utc(2024, 12, 9, 8, 0, 30))
    assert received() == {"tokyo0@example.com": 1, "london0@example.com": 1}


def test_an_employee_back_from_leave_receives_it_on_their_first_working_day(db: None) -> None:
    staff("London", "Europe/London", "GB", "ENG", n=2)
    Employee.objects.filter(email="london1@example.com").update(away_until="2024-12-11")
    one_off(utc(2024, 12, 9, 10))  # Monday 10:00
    tick_and_dispatch(utc(2024, 12, 9, 10, 0, 30))
    assert received() == {"london0@example.com": 1}
    away = Delivery.objects.get(employee__email="london1@example.com")
    assert (away.state, away.due_at) == ("held", utc(2024, 12, 12, 8))
    assert away.hold_reason == "away until Wed 11 Dec 2024"
    tick_and_dispatch(utc(2024, 12, 12, 8, 0, 30))
    assert received() == {"london0@example.com": 1, "london1@example.com": 1}


def test_employees_without_a_location_keep_the_default_working_week_in_their_zone(
    db: None, settings: Any
) -> None:
    settings.BULLETIN = replace(conf.load({}), working_week="Mon-Fri 09:00-17:00")
    factories.employees(1, zone="Europe/Paris")
    one_off(utc(2024, 12, 9, 7, 30))  # 08:30 in Paris: before 09:00
    tick_and_dispatch(utc(2024, 12, 9, 7, 30, 30))
    assert due_by_location()[None] == ("held", utc(2024, 12, 9, 8), "before working hours")


def test_a_delivery_held_past_a_pause_waits_for_the_resume_and_goes_once(
    three_zones: None, ann: User
) -> None:
    with at(utc(2024, 12, 6, 12)):
        item = factories.announcement(
            now=utc(2024, 12, 6, 12),
            cron="0 23 * * 5",
            zone="UTC",
            channels=("inapp",),
            working_hours=True,
        )
    tick_and_dispatch(FRIDAY_2300_UTC + timedelta(seconds=30))
    with at(utc(2024, 12, 7, 10)):
        lifecycle.pause(Announcement.objects.get(pk=item.pk), ann)
    tick_and_dispatch(utc(2024, 12, 9, 14))  # every window has opened: still paused
    assert received() == {}
    assert set(Delivery.objects.values_list("state", flat=True)) == {"held"}
    with at(utc(2024, 12, 10, 9)):
        lifecycle.resume(Announcement.objects.get(pk=item.pk), ann)
    tick_and_dispatch(utc(2024, 12, 10, 9, 0, 30))
    tick_and_dispatch(utc(2024, 12, 10, 10))
    assert set(received().values()) == {1} and len(received()) == 3


def test_cancelling_withdraws_held_deliveries_even_once_planning_has_finished(
    three_zones: None, ann: User
) -> None:
    item = one_off(FRIDAY_2300_UTC)
    tick_and_dispatch(FRIDAY_2300_UTC + timedelta(seconds=30))
    item.refresh_from_db()
    assert item.status == "finished"
    with at(utc(2024, 12, 7, 10)):
        lifecycle.cancel(item, ann)
    tick_and_dispatch(utc(2024, 12, 9, 14))
    assert received() == {}
    assert set(Delivery.objects.values_list("state", "last_error")) == {
        ("skipped", "announcement cancelled")
    }


def test_a_finished_announcement_with_nothing_held_still_cannot_be_cancelled(
    three_zones: None, ann: User
) -> None:
    item = one_off(utc(2024, 12, 9, 14))  # Monday 14:00 UTC: open in London and New York
    tick_and_dispatch(utc(2024, 12, 9, 14, 0, 30))
    tick_and_dispatch(utc(2024, 12, 9, 23, 0, 30))  # Tokyo's Tuesday 08:00
    item.refresh_from_db()
    with pytest.raises(ValidationError, match="already finished"):
        lifecycle.cancel(item, ann)


def test_a_mandatory_announcement_is_never_held_and_the_bypass_is_audited(
    three_zones: None,
) -> None:
    item = one_off(FRIDAY_2300_UTC, mandatory=True)
    tick_and_dispatch(FRIDAY_2300_UTC + timedelta(seconds=30))
    assert len(received()) == 3
    assert not Delivery.objects.exclude(hold_reason="").exists()
    events = AuditEvent.objects.filter(announcement=item, action=AuditAction.NOT_HELD)
    assert [event.detail["reason"] for event in events] == ["mandatory"]


def test_send_now_regardless_releases_what_is_held_once_and_is_audited(
    three_zones: None, ann: User
) -> None:
    item = one_off(FRIDAY_2300_UTC)
    tick_and_dispatch(FRIDAY_2300_UTC + timedelta(seconds=30))
    with at(utc(2024, 12, 7, 10)):
        assert lifecycle.send_now(item, ann) == 3
        assert lifecycle.send_now(item, ann) == 0
        Dispatcher().run_until_idle()
    assert len(received()) == 3
    tick_and_dispatch(utc(2024, 12, 9, 14))
    assert set(received().values()) == {1}
    event = AuditEvent.objects.get(announcement=item, action=AuditAction.RELEASED)
    assert (event.actor, event.detail) == (ann, {"deliveries": 3})


def test_send_now_needs_the_permission_to_schedule(three_zones: None, eve: User) -> None:
    item = one_off(FRIDAY_2300_UTC)
    tick_and_dispatch(FRIDAY_2300_UTC + timedelta(seconds=30))
    with pytest.raises(PermissionDenied):
        lifecycle.send_now(item, eve)
    assert lifecycle.held(item).count() == 3


def test_places_are_not_held(three_zones: None) -> None:
    hook = Place.objects.create(name="ops", channel=Channel.WEBHOOK, target="http://127.0.0.1:9/")
    one_off(FRIDAY_2300_UTC, places=[hook])
    with at(FRIDAY_2300_UTC + timedelta(seconds=30)):
        tick()
    place_row = Delivery.objects.get(place=hook)
    assert (place_row.state, place_row.hold_reason) == ("pending", "")
    assert Delivery.objects.filter(state=DeliveryState.HELD).count() == 3


def test_an_announcement_without_working_hours_is_never_held(three_zones: None) -> None:
    one_off(FRIDAY_2300_UTC, working_hours=False)
    tick_and_dispatch(FRIDAY_2300_UTC + timedelta(seconds=30))
    assert len(received()) == 3


def test_the_preview_says_who_waits_where_why_and_until_when(db: None) -> None:
    staff("Pune", "Asia/Kolkata", "IN", "MH", n=3)
    staff("London", "Europe/London", "GB", "ENG", n=2)
    item = one_off(utc(2024, 10, 31, 9))
    lines = [str(waiting) for waiting in waiting_at(item, utc(2024, 10, 31, 9))]
    assert lines == ["3 in Pune: Diwali, delivered Fri 1 Nov 08:00 IST"]
    item.mandatory = True
    assert waiting_at(item, utc(2024, 10, 31, 9)) == []


def test_a_retry_after_the_window_opens_is_still_the_same_delivery(
    db: None, smtp_settings: Any
) -> None:
    staff("London", "Europe/London", "GB", "ENG")
    smtp_settings.rcpt_replies["london0@example.com"] = "451 4.2.0 Mailbox busy, try later"
    one_off(FRIDAY_2300_UTC, channels=("email",))
    tick_and_dispatch(FRIDAY_2300_UTC + timedelta(seconds=30))
    tick_and_dispatch(utc(2024, 12, 9, 8, 0, 30))  # the window opens: 451, a retry is planned
    row = Delivery.objects.get()
    assert (row.state, row.attempts) == ("pending", 1)
    del smtp_settings.rcpt_replies["london0@example.com"]
    tick_and_dispatch(row.due_at + timedelta(seconds=1))
    row.refresh_from_db()
    assert (row.state, row.attempts, row.hold_reason) == ("sent", 2, "after working hours, weekend")
    assert Delivery.objects.count() == 1
    assert len(smtp_settings.received) == 1
