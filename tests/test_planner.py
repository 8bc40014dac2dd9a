"""The planner through the database, with the clock moved by time-machine across real DST
transitions and backwards: occurrence rows are the evidence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from bulletin.dispatch.planning import tick
from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    Delivery,
    Occurrence,
    OccurrenceState,
)
from tests import factories

pytestmark = pytest.mark.django_db


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fire_instants(announcement: Announcement) -> list[datetime]:
    rows = Occurrence.objects.filter(announcement=announcement).order_by("fire_at")
    return [row.fire_at for row in rows]


def tick_at(moment: datetime) -> None:
    with time_machine.travel(moment, tick=False):
        tick()


def tick_hourly(start: datetime, end: datetime) -> None:
    moment = start
    while moment <= end:
        tick_at(moment)
        moment += timedelta(hours=1)


def test_daily_gap_time_fires_once_after_the_gap_in_new_york() -> None:
    factories.employees(2, zone="America/New_York")
    start = utc(2027, 3, 12, 12)
    with time_machine.travel(start, tick=False):
        item = factories.announcement(now=start, cron="30 2 * * *", zone="America/New_York")
    tick_hourly(start, utc(2027, 3, 16, 12))
    # 02:30 EST = 07:30Z; on the 14th 02:30 does not exist: 03:00 EDT = 07:00Z; then 06:30Z.
    assert fire_instants(item) == [
        utc(2027, 3, 13, 7, 30),
        utc(2027, 3, 14, 7, 0),
        utc(2027, 3, 15, 6, 30),
        utc(2027, 3, 16, 6, 30),
    ]
    moved = Occurrence.objects.get(announcement=item, fire_at=utc(2027, 3, 14, 7, 0))
    assert "does not exist" in moved.note


def test_fixed_time_in_the_repeated_hour_fires_once_in_new_york() -> None:
    factories.employees(1, zone="America/New_York")
    start = utc(2026, 10, 31, 12)
    with time_machine.travel(start, tick=False):
        item = factories.announcement(now=start, cron="30 1 * * *", zone="America/New_York")
    # Ticking every 10 minutes through the night sees both 01:30s go by.
    moment = start
    while moment <= utc(2026, 11, 2, 12):
        tick_at(moment)
        moment += timedelta(minutes=10)
    # 01:30 EDT = 05:30Z on 1 Nov (the first); the second 01:30 (EST, 06:30Z) does not fire.
    assert fire_instants(item) == [
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 2, 6, 30),
    ]


def test_wildcard_hour_schedule_follows_elapsed_time_through_the_london_fold() -> None:
    factories.employees(1)
    start = utc(2026, 10, 24, 22, 50)  # 23:50 BST
    with time_machine.travel(start, tick=False):
        item = factories.announcement(now=start, cron="0 * * * *", zone="Europe/London")
    tick_hourly(start + timedelta(minutes=15), utc(2026, 10, 25, 3, 5))
    # 00:00 BST, 01:00 BST, 01:00 GMT, 02:00 GMT, 03:00 GMT: one per real hour.
    assert fire_instants(item) == [utc(2026, 10, 24, 23), *[utc(2026, 10, 25, h) for h in range(4)]]


def test_wildcard_hour_schedule_follows_elapsed_time_through_the_new_york_gap() -> None:
    factories.employees(1, zone="America/New_York")
    start = utc(2024, 3, 10, 4, 50)  # 23:50 EST on the 9th
    with time_machine.travel(start, tick=False):
        item = factories.announcement(now=start, cron="15 * * * *", zone="America/New_York")
    tick_hourly(start + timedelta(minutes=30), utc(2024, 3, 10, 9, 20))
    # 00:15 EST, 01:15 EST, then 03:15 EDT: 02:15 does not exist, and no 03:00 catch-up.
    assert fire_instants(item) == [utc(2024, 3, 10, h, 15) for h in range(5, 10)]
    after_gap = Occurrence.objects.get(announcement=item, fire_at=utc(2024, 3, 10, 7, 15))
    assert "this schedule skips it" in after_gap.note


def test_lord_howe_half_hour_gap_moves_the_time_to_the_first_valid_minute() -> None:
    factories.employees(1, zone="Australia/Lord_Howe")
    start = utc(2026, 10, 2, 0)
    with time_machine.travel(start, tick=False):
        item = factories.announcement(now=start, cron="15 2 * * *", zone="Australia/Lord_Howe")
    tick_hourly(start, utc(2026, 10, 5, 0))
    # +10:30 until 4 Oct 02:00, when clocks go to 02:30 (+11:00).
    assert fire_instants(item) == [
        utc(2026, 10, 2, 15, 45),
        utc(2026, 10, 3, 15, 30),
        utc(2026, 10, 4, 15, 15),
    ]


def test_clock_going_backwards_fires_nothing_again() -> None:
    factories.employees(3)
    start = utc(2026, 6, 1, 8, 0)
    with time_machine.travel(start, tick=False):
        item = factories.announcement(now=start, cron="0 9 * * *")
    tick_at(utc(2026, 6, 1, 8, 1))  # 09:00 BST = 08:00Z already passed at creation
    tick_at(utc(2026, 6, 2, 8, 0, 30))
    assert fire_instants(item) == [utc(2026, 6, 2, 8)]
    deliveries = Delivery.objects.count()
    # NTP yanks the clock back a day, then forward again past the same fire time.
    tick_at(utc(2026, 6, 1, 7, 59))
    tick_at(utc(2026, 6, 1, 8, 0, 30))
    tick_at(utc(2026, 6, 2, 8, 0, 30))
    assert fire_instants(item) == [utc(2026, 6, 2, 8)]
    assert Delivery.objects.count() == deliveries == 3


def test_occurrence_later_than_its_grace_is_recorded_missed_not_sent() -> None:
    factories.employees(2)
    start = utc(2026, 6, 1, 6)
    with time_machine.travel(start, tick=False):
        item = factories.announcement(now=start, cron="0 9 * * *", grace=timedelta(minutes=30))
    # Down from 06:00Z until 10:00Z: the 08:00Z occurrence is two hours late.
    tick_at(utc(2026, 6, 1, 10))
    occurrence = Occurrence.objects.get(announcement=item)
    assert (occurrence.fire_at, occurrence.state) == (utc(2026, 6, 1, 8), OccurrenceState.MISSED)
    assert Delivery.objects.count() == 0


def test_send_late_delivers_an_occurrence_past_its_grace() -> None:
    factories.employees(2)
    start = utc(2026, 6, 1, 6)
    with time_machine.travel(start, tick=False):
        factories.announcement(
            now=start, cron="0 9 * * *", grace=timedelta(minutes=30), send_late=True
        )
    tick_at(utc(2026, 6, 1, 10))
    assert Occurrence.objects.get().state == OccurrenceState.FANNED_OUT
    assert Delivery.objects.count() == 2


def test_occurrence_within_its_grace_is_still_sent_after_downtime() -> None:
    factories.employees(1)
    start = utc(2026, 6, 1, 7)
    with time_machine.travel(start, tick=False):
        factories.announcement(now=start, cron="0 9 * * *", grace=timedelta(hours=1))
    tick_at(utc(2026, 6, 1, 8, 40))
    assert Occurrence.objects.get().state == OccurrenceState.FANNED_OUT


def test_long_downtime_records_every_missed_occurrence_in_bounded_slices() -> None:
    factories.employees(1)
    start = utc(2026, 6, 1, 0)
    with time_machine.travel(start, tick=False):
        item = factories.announcement(now=start, cron="* * * * *", grace=timedelta(minutes=5))
    down_until = start + timedelta(days=1)
    for _ in range(3):  # 1440 minutes owed: two slices of at most 1000, then caught up
        tick_at(down_until)
    occurrences = Occurrence.objects.filter(announcement=item)
    assert occurrences.count() == 1440
    # 23:55 .. 24:00 are within the five-minute grace when the clock reads 24:00.
    assert occurrences.filter(state=OccurrenceState.MISSED).count() == 1434
    item.refresh_from_db()
    assert item.planned_until == down_until


def test_one_off_fires_once_and_the_announcement_finishes() -> None:
    factories.employees(4)
    start = utc(2026, 6, 1, 8)
    with time_machine.travel(start, tick=False):
        item = factories.announcement(now=start, at="2026-06-01T10:00")
    tick_at(utc(2026, 6, 1, 8, 59))
    assert Occurrence.objects.count() == 0
    tick_at(utc(2026, 6, 1, 9, 0, 5))
    tick_at(utc(2026, 6, 1, 9, 1))
    item.refresh_from_db()
    assert fire_instants(item) == [utc(2026, 6, 1, 9)]
    assert item.status == AnnouncementStatus.FINISHED
    assert Delivery.objects.count() == 4


def test_each_recipient_zone_is_its_own_occurrence_at_its_local_time() -> None:
    factories.employees(2, zone="Europe/London", prefix="london")
    factories.employees(3, zone="Asia/Tokyo", prefix="tokyo")
    factories.employees(1, zone="America/New_York", prefix="ny")
    start = utc(2026, 6, 1, 0, 30)
    with time_machine.travel(start, tick=False):
        item = factories.announcement(now=start, cron="0 9 * * *", per_recipient_zone=True)
    tick_hourly(utc(2026, 6, 1, 0, 31), utc(2026, 6, 2, 1))
    rows = Occurrence.objects.filter(announcement=item).order_by("fire_at")
    # Tokyo's 09:00 on 1 June (00:00Z) had passed at creation; its next one is 2 June.
    assert [(o.zone, o.fire_at, o.delivery_count) for o in rows] == [
        ("Europe/London", utc(2026, 6, 1, 8), 2),
        ("America/New_York", utc(2026, 6, 1, 13), 1),
        ("Asia/Tokyo", utc(2026, 6, 2, 0), 3),
    ]
    london = Delivery.objects.filter(occurrence__zone="Europe/London")
    assert {d.employee.timezone for d in london} == {"Europe/London"}


def test_paused_announcement_plans_nothing_and_resumes_from_now() -> None:
    from bulletin.dispatch.announcements import pause, schedule

    factories.employees(1)
    start = utc(2026, 6, 1, 7)
    with time_machine.travel(start, tick=False):
        item = factories.announcement(now=start, cron="0 9 * * *")
        pause(item)
    tick_at(utc(2026, 6, 1, 8, 5))
    assert Occurrence.objects.count() == 0
    with time_machine.travel(utc(2026, 6, 1, 8, 30), tick=False):
        schedule(item)
    tick_at(utc(2026, 6, 2, 8, 5))
    assert fire_instants(item) == [utc(2026, 6, 2, 8)]


def test_recipient_local_one_off_in_a_gap_follows_the_cron_policy_in_that_zone() -> None:
    factories.employees(1, zone="America/New_York", prefix="ny")
    factories.employees(1, zone="Europe/London", prefix="london")
    start = utc(2027, 3, 13, 0)
    with time_machine.travel(start, tick=False):
        item = factories.announcement(now=start, at="2027-03-14T02:30", per_recipient_zone=True)
    tick_hourly(start, utc(2027, 3, 15, 0))
    rows = Occurrence.objects.filter(announcement=item).order_by("fire_at")
    # London: 02:30 GMT. New York: 02:30 does not exist that night, so 03:00 EDT (07:00Z).
    assert [(o.zone, o.fire_at) for o in rows] == [
        ("Europe/London", utc(2027, 3, 14, 2, 30)),
        ("America/New_York", utc(2027, 3, 14, 7, 0)),
    ]
    assert "does not exist" in rows[1].note
    tick_at(utc(2027, 3, 16, 0))  # past every zone on Earth: the announcement is done
    item.refresh_from_db()
    assert item.status == AnnouncementStatus.FINISHED


def test_one_broken_announcement_does_not_stop_the_others_from_being_planned() -> None:
    factories.employees(1)
    start = utc(2026, 6, 1, 7)
    with time_machine.travel(start, tick=False):
        broken = factories.announcement(now=start, cron="0 9 * * *")
        healthy = factories.announcement(now=start, cron="0 9 * * *")
    Announcement.objects.filter(pk=broken.pk).update(cron="not a cron")
    tick_at(utc(2026, 6, 1, 8, 1))
    assert fire_instants(healthy) == [utc(2026, 6, 1, 8)]
    assert fire_instants(broken) == []
