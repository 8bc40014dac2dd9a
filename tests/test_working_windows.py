"""The working-window policy as paired tables on real calendars and real DST transitions.

Each row: a person (zone, public-holiday region, working week, leave) and a UTC instant a
delivery comes due, and when it goes (the instant itself, or the start of their next window)
with the reason HR is shown. Holidays are the pinned ``holidays`` package's own data.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime

import pytest

from bulletin.scheduling.working import (
    Availability,
    Region,
    RegionError,
    WorkingWeek,
    WorkingWeekError,
    check_region,
    hold_for,
    local_text,
)

OFFICE = "Mon-Fri 08:00-18:00"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def person(
    zone: str, region: str = "", week: str = OFFICE, away: date | None = None
) -> Availability:
    country, _, subdivision = region.partition("-")
    found = Region(country, subdivision) if country else None
    return Availability(zoneinfo.ZoneInfo(zone), WorkingWeek.parse(week), found, away)


def goes(due: datetime, who: Availability) -> tuple[datetime, str]:
    """When a delivery due at ``due`` goes, and why it waited ("" if it did not)."""
    hold = hold_for(due, who)
    return (due, "") if hold is None else (hold.until, hold.reason)


# Same UTC instant, two places: a public holiday in one and not in the other.
SAME_INSTANT_HOLIDAYS = [
    pytest.param(
        utc(2024, 10, 31, 9),
        person("Asia/Kolkata", "IN-MH"),
        (utc(2024, 11, 1, 2, 30), "Diwali"),
        id="pune-diwali-held-to-friday-0800-ist",
    ),
    pytest.param(
        utc(2024, 10, 31, 9),
        person("Europe/London", "GB-ENG"),
        (utc(2024, 10, 31, 9), ""),
        id="london-same-instant-goes-at-once",
    ),
    pytest.param(
        utc(2024, 10, 31, 9),
        person("Europe/Berlin", "DE-SN"),
        (utc(2024, 11, 1, 7), "Reformation Day"),
        id="leipzig-reformation-day-held",
    ),
    pytest.param(
        utc(2024, 10, 31, 9),
        person("Europe/Berlin", "DE-BE"),
        (utc(2024, 10, 31, 9), ""),
        id="berlin-same-country-other-state-goes",
    ),
    pytest.param(
        utc(2025, 11, 27, 15),
        person("America/New_York", "US-NY"),
        (utc(2025, 11, 28, 13), "Thanksgiving Day"),
        id="new-york-thanksgiving-held",
    ),
    pytest.param(
        utc(2025, 11, 27, 15),
        person("America/Toronto", "CA-ON"),
        (utc(2025, 11, 27, 15), ""),
        id="toronto-same-instant-goes",
    ),
]


@pytest.mark.parametrize(("due", "who", "expected"), SAME_INSTANT_HOLIDAYS)
def test_a_holiday_holds_only_the_people_whose_location_keeps_it(
    due: datetime, who: Availability, expected: tuple[datetime, str]
) -> None:
    assert goes(due, who) == expected


# A clock change weekend, then a public holiday: March and October pairs. The window opens at
# 08:00 on the new offset.
DST_WEEKEND_THEN_HOLIDAY = [
    pytest.param(
        utc(2024, 3, 28, 18, 30),  # Thu 18:30 GMT; Good Friday, BST from Sun, Easter Monday
        person("Europe/London", "GB-ENG"),
        (utc(2024, 4, 2, 7), "after working hours, Good Friday, weekend, Easter Monday"),
        id="march-london-easter-after-the-clocks-go-forward",
    ),
    pytest.param(
        utc(2024, 10, 25, 17, 30),  # Fri 18:30 IST; GMT from Sun; October Bank Holiday Mon
        person("Europe/Dublin", "IE"),
        (utc(2024, 10, 29, 8), "after working hours, weekend, October Bank Holiday"),
        id="october-dublin-bank-holiday-after-the-clocks-go-back",
    ),
    pytest.param(
        utc(2024, 10, 25, 17, 30),  # the same instant in London: no holiday on Monday
        person("Europe/London", "GB-ENG"),
        (utc(2024, 10, 28, 8), "after working hours, weekend"),
        id="october-london-same-weekend-no-holiday",
    ),
    pytest.param(
        utc(2024, 3, 8, 23, 30),  # Fri 18:30 EST; EDT from Sun 10 Mar
        person("America/New_York", "US-NY"),
        (utc(2024, 3, 11, 12), "after working hours, weekend"),
        id="march-new-york-monday-0800-edt",
    ),
    pytest.param(
        utc(2024, 11, 1, 22, 30),  # Fri 18:30 EDT; EST from Sun 3 Nov
        person("America/New_York", "US-NY"),
        (utc(2024, 11, 4, 13), "after working hours, weekend"),
        id="november-new-york-monday-0800-est",
    ),
]


@pytest.mark.parametrize(("due", "who", "expected"), DST_WEEKEND_THEN_HOLIDAY)
def test_a_dst_weekend_followed_by_a_holiday_opens_at_0800_on_the_new_offset(
    due: datetime, who: Availability, expected: tuple[datetime, str]
) -> None:
    assert goes(due, who) == expected


FRIDAY_EVENING_UTC = utc(2024, 12, 6, 23)
FRIDAY_EVENING_IN_THREE_ZONES = [
    pytest.param("Europe/London", utc(2024, 12, 9, 8), "after working hours, weekend", id="london"),
    pytest.param(
        "America/New_York", utc(2024, 12, 9, 13), "after working hours, weekend", id="new-york"
    ),
    pytest.param("Asia/Tokyo", utc(2024, 12, 8, 23), "weekend", id="tokyo-already-saturday"),
]


@pytest.mark.parametrize(("zone", "monday", "reason"), FRIDAY_EVENING_IN_THREE_ZONES)
def test_a_friday_evening_announcement_reaches_monday_0800_in_each_zone(
    zone: str, monday: datetime, reason: str
) -> None:
    assert goes(FRIDAY_EVENING_UTC, person(zone)) == (monday, reason)
    assert local_text(monday, zoneinfo.ZoneInfo(zone)).startswith("Mon 9 Dec 08:00")


BACK_FROM_LEAVE = [
    pytest.param(
        date(2024, 12, 11), (utc(2024, 12, 12, 8), "away until Wed 11 Dec 2024"), id="wednesday"
    ),
    pytest.param(
        date(2024, 12, 13),
        (utc(2024, 12, 16, 8), "away until Fri 13 Dec 2024, weekend"),
        id="leave-ends-on-a-friday",
    ),
    pytest.param(
        date(2024, 12, 24),
        (utc(2024, 12, 27, 8), "away until Tue 24 Dec 2024, Christmas Day, Boxing Day"),
        id="leave-ends-before-christmas",
    ),
    pytest.param(date(2024, 12, 8), (utc(2024, 12, 9, 10), ""), id="leave-already-over"),
]


@pytest.mark.parametrize(("away", "expected"), BACK_FROM_LEAVE)
def test_an_employee_back_from_leave_receives_it_at_their_first_working_window(
    away: date, expected: tuple[datetime, str]
) -> None:
    due = utc(2024, 12, 9, 10)  # Mon 10:00 in London
    assert goes(due, person("Europe/London", "GB-ENG", away=away)) == expected


WINDOW_EDGES = [
    pytest.param(utc(2024, 12, 9, 7, 59), (utc(2024, 12, 9, 8), "before working hours"), id="0759"),
    pytest.param(utc(2024, 12, 9, 8), (utc(2024, 12, 9, 8), ""), id="0800-opens"),
    pytest.param(utc(2024, 12, 9, 17, 59), (utc(2024, 12, 9, 17, 59), ""), id="1759-still-open"),
    pytest.param(
        utc(2024, 12, 9, 18), (utc(2024, 12, 10, 8), "after working hours"), id="1800-closed"
    ),
]


@pytest.mark.parametrize(("due", "expected"), WINDOW_EDGES)
def test_a_window_is_open_from_its_start_until_just_before_its_end(
    due: datetime, expected: tuple[datetime, str]
) -> None:
    assert goes(due, person("Europe/London")) == expected


# A window that opens inside a clock change: the gap's first valid minute, the fold's first.
WINDOW_START_IN_A_TRANSITION = [
    pytest.param(
        utc(2024, 3, 10, 5),  # 00:00 EST; 02:30 does not exist that night
        "Mon-Sun 02:30-10:00",
        utc(2024, 3, 10, 7),  # 03:00 EDT
        id="march-start-in-the-gap-opens-after-it",
    ),
    pytest.param(
        utc(2024, 11, 3, 4),  # 00:00 EDT; 01:30 happens twice that night
        "Mon-Sun 01:30-10:00",
        utc(2024, 11, 3, 5, 30),  # 01:30 EDT, the first
        id="november-start-in-the-fold-opens-at-the-first",
    ),
]


@pytest.mark.parametrize(("due", "week", "opens"), WINDOW_START_IN_A_TRANSITION)
def test_a_window_starting_in_a_dst_transition_opens_as_a_fixed_time_schedule_fires(
    due: datetime, week: str, opens: datetime
) -> None:
    assert goes(due, person("America/New_York", week=week)) == (opens, "before working hours")


def test_a_sunday_to_thursday_week_holds_friday_until_sunday_morning() -> None:
    who = person("Asia/Jerusalem", "IL", week="Sun-Thu 09:00-18:00")
    friday = utc(2024, 12, 6, 8)  # Fri 10:00 IST
    assert goes(friday, who) == (utc(2024, 12, 8, 7), "weekend")


WEEKS = [
    ("Mon-Fri 08:00-18:00", "Mon-Fri 08:00-18:00"),
    ("sun-thu 9:00-17:30", "Sun-Thu 09:00-17:30"),
    ("Monday,Wednesday,Friday 09:00-13:00", "Mon,Wed,Fri 09:00-13:00"),
    ("Fri-Mon 10:00-24:00", "Fri-Mon 10:00-23:59"),
    ("Mon-Sun 00:00-23:59", "Mon-Sun 00:00-23:59"),
]


@pytest.mark.parametrize(("written", "read"), WEEKS)
def test_a_working_week_is_read_back_as_written(written: str, read: str) -> None:
    assert str(WorkingWeek.parse(written)) == read
    assert WorkingWeek.parse(read) == WorkingWeek.parse(written)


BAD_WEEKS = [
    ("Mon-Fri", "is not like 'Mon-Fri 08:00-18:00'"),
    ("Mon-Fri 18:00-08:00", "the day must end after it starts (18:00-08:00)"),
    ("Mun-Fri 08:00-18:00", "'Mun' is not a day"),
    ("Mon-Fri 08:00-25:00", "'25:00' is not a time of day"),
]


@pytest.mark.parametrize(("written", "problem"), BAD_WEEKS)
def test_a_working_week_that_cannot_be_read_says_why(written: str, problem: str) -> None:
    with pytest.raises(WorkingWeekError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        WorkingWeek.parse(written)


BAD_REGIONS = [
    ("XX", "", "country", "unknown country code 'XX'"),
    ("IN", "ZZ", "subdivision", "unknown subdivision code 'ZZ' for country 'IN'"),
    ("", "MH", "subdivision", "subdivision 'MH' needs a country"),
]


@pytest.mark.parametrize(("country", "subdivision", "field", "problem"), BAD_REGIONS)
def test_an_unknown_country_or_subdivision_is_refused_naming_the_field_and_code(
    country: str, subdivision: str, field: str, problem: str
) -> None:
    with pytest.raises(RegionError, match=problem) as refused:
        check_region(country, subdivision)
    assert refused.value.field == field


def test_known_regions_are_accepted() -> None:
    for country, subdivision in (("IN", "MH"), ("GB", "ENG"), ("US", ""), ("", "")):
        check_region(country, subdivision)
