"""Working windows: when a person may be reached, and when their next window opens.

Working-hours policy (stated once; the README repeats it)
--------------------------------------------------------
* A **working week** is days and hours on the recipient's own wall clock, written
  ``Mon-Fri 08:00-18:00`` (also ``Sun-Thu 09:00-17:00``, ``Mon,Wed,Fri 09:00-13:00``). It is
  their location's, else ``BULLETIN_WORKING_WEEK``. A day's window is ``[start, end)``.
* A day has no window when it is not one of the week's days, when it is a public holiday of
  the location's country (and subdivision, if set) as the ``holidays`` package lists them, or
  when it is on or before the person's ``away_until`` (the last day of their leave).
* A delivery due inside a window goes at once. Otherwise it waits for the start of the next
  window: later that day if it came before hours, else the first working day's start.
* Days are the recipient's local dates, in their own zone. A window's start that falls in a
  spring-forward gap opens at the first valid minute after it, and one in a repeated hour at
  its first occurrence, exactly as fixed-time schedules fire (:mod:`.rules`).
* Decided once, when an occurrence fans out; places (channels, webhooks) are never held, and
  mandatory announcements never wait.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

import holidays

from bulletin.scheduling.rules import ScheduleError, local_choices

__all__ = [
    "Availability",
    "Hold",
    "Region",
    "RegionError",
    "WorkingWeek",
    "WorkingWeekError",
    "check_region",
    "day_text",
    "hold_for",
    "local_text",
]

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_WEEK = re.compile(
    r"^\s*(?P<days>[A-Za-z,\- ]+?)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$"
)
# How far ahead a window is looked for: past any leave a person might have booked, and the
# longest run of holidays any calendar has. A person away longer is held until their return.
_HORIZON_DAYS = 800


class WorkingWeekError(ScheduleError):
    """A working week that cannot be read; str(e) is one user-facing line."""


class RegionError(ValueError):
    """An unknown country or subdivision code; ``field`` names which."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class WorkingWeek:
    days: frozenset[int]  # 0 = Monday, as date.weekday()
    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> WorkingWeek:
        """``Mon-Fri 08:00-18:00``, or WorkingWeekError saying what is wrong."""
        found = _WEEK.match(text or "")
        if not found:
            raise WorkingWeekError(
                f"working week '{text}' is not like 'Mon-Fri 08:00-18:00' (days, then hours)"
            )
        start, end = _clock(found["start"]), _clock(found["end"])
        if end <= start:
            raise WorkingWeekError(
                f"working week '{text}': the day must end after it starts "
                f"({found['start']}-{found['end']})"
            )
        return cls(_days(found["days"], text), start, end)

    def __str__(self) -> str:
        return f"{_days_text(self.days)} {self.start:%H:%M}-{self.end:%H:%M}"


def _clock(text: str) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    if hours > 23 or minutes > 59:
        if (hours, minutes) == (24, 0):
            return time(23, 59)  # "until midnight": the last minute of the day
        raise WorkingWeekError(f"'{text}' is not a time of day (00:00 to 23:59)")
    return time(hours, minutes)


def _day(name: str, text: str) -> int:
    key = name.strip()[:3].title()
    if key not in DAY_NAMES or len(name.strip()) not in (3, len(_full_name(key))):
        raise WorkingWeekError(f"working week '{text}': '{name.strip()}' is not a day (Mon…Sun)")
    return DAY_NAMES.index(key)


def _full_name(key: str) -> str:
    return ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")[
        DAY_NAMES.index(key)
    ]


def _days(spec: str, text: str) -> frozenset[int]:
    """``Mon-Fri``, ``Sun-Thu`` (a range may wrap past Sunday), ``Mon,Wed,Fri`` or a mix."""
    days: set[int] = set()
    for part in spec.split(","):
        first, _, last = part.partition("-")
        begin = _day(first, text)
        end = _day(last, text) if last else begin
        days.update((begin + step) % 7 for step in range((end - begin) % 7 + 1))
    return frozenset(days)


def _days_text(days: frozenset[int]) -> str:
    """``Mon-Fri``, ``Sun-Thu`` for a run of three or more days (wrapping past Sunday), else
    the days listed: the form ``parse`` reads back."""
    if len(days) == 7:
        return "Mon-Sun"
    for first in sorted(days):
        run = {(first + step) % 7 for step in range(len(days))}
        if len(days) > 2 and run == days and (first - 1) % 7 not in days:
            return f"{DAY_NAMES[first]}-{DAY_NAMES[(first + len(days) - 1) % 7]}"
    return ",".join(DAY_NAMES[day] for day in sorted(days))


@lru_cache(maxsize=1)
def _supported() -> dict[str, Any]:
    return holidays.list_supported_countries()


def check_region(country: str, subdivision: str = "") -> None:
    """RegionError naming the field and the code unless ``holidays`` knows them both."""
    if not country:
        if subdivision:
            raise RegionError("subdivision", f"subdivision '{subdivision}' needs a country")
        return
    known = _supported()
    if country not in known:
        raise RegionError("country", f"unknown country code '{country}' (ISO 3166-1 alpha-2)")
    if subdivision and subdivision not in known[country]:
        raise RegionError(
            "subdivision", f"unknown subdivision code '{subdivision}' for country '{country}'"
        )


@dataclass(frozen=True)
class Region:
    """Where public holidays are looked up: a country code, optionally a subdivision."""

    country: str
    subdivision: str = ""

    def holiday(self, day: date) -> str | None:
        """The holiday's name (several on one day joined by "; "), or None."""
        return _calendar(self.country, self.subdivision).get(day)


@lru_cache(maxsize=256)
def _calendar(country: str, subdivision: str) -> holidays.HolidayBase:
    # Years are added as they are asked for (expand=True, the default).
    return holidays.country_holidays(country, subdiv=subdivision or None)


@dataclass(frozen=True)
class Availability:
    """One person's: their zone, working week, holiday region and leave."""

    zone: zoneinfo.ZoneInfo
    week: WorkingWeek
    region: Region | None = None
    away_until: date | None = None


@dataclass(frozen=True)
class Hold:
    """A delivery waits: until (aware UTC) the start of the person's next window, and why."""

    until: datetime
    reason: str


def hold_for(due: datetime, who: Availability) -> Hold | None:
    """None if ``due`` (aware) falls in one of ``who``'s windows, else when and why to wait."""
    reasons: list[str] = []
    local = due.astimezone(who.zone)
    for day in _days_from(local.date()):
        why = _closed(day, who)
        if why is None:
            opens, closes = _instant(day, who.week.start, who), _instant(day, who.week.end, who)
            if due < opens:
                _add(reasons, "before working hours" if day == local.date() else None)
                return Hold(opens, ", ".join(reasons))
            if due < closes:
                return None
            why = "after working hours"
        _add(reasons, why)
    return Hold(
        _instant(local.date() + timedelta(days=_HORIZON_DAYS), who.week.start, who),
        ", ".join(reasons),
    )


def _days_from(first: date) -> Iterator[date]:
    return (first + timedelta(days=offset) for offset in range(_HORIZON_DAYS))


def _closed(day: date, who: Availability) -> str | None:
    """Why ``day`` has no window for ``who``; None when it has one."""
    if who.away_until is not None and day <= who.away_until:
        return f"away until {day_text(who.away_until)}"
    if who.region is not None and (name := who.region.holiday(day)):
        return name
    if day.weekday() not in who.week.days:
        return "weekend"
    return None


def _instant(day: date, clock: time, who: Availability) -> datetime:
    """When ``clock`` on ``day`` is shown in the zone: the first time if twice, and the first
    valid minute after a gap (the rules' fixed-time policy)."""
    wall = datetime.combine(day, clock)
    choices = local_choices(wall, who.zone)
    existing = [c for c in choices if c.astimezone(who.zone).replace(tzinfo=None) == wall]
    return (existing or [choices[-1]])[0].astimezone(UTC)


def _add(reasons: list[str], reason: str | None) -> None:
    if reason and reason not in reasons:
        reasons.append(reason)


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def day_text(day: date) -> str:
    """``Tue 31 Dec 2024``: spelled out so it does not depend on the process locale."""
    return f"{DAY_NAMES[day.weekday()]} {day.day} {_MONTHS[day.month - 1]} {day.year}"


def local_text(instant: datetime, zone: zoneinfo.ZoneInfo) -> str:
    """``Fri 1 Nov 08:00 IST``: when a window opens, on the recipient's clock."""
    local = instant.astimezone(zone)
    day = f"{DAY_NAMES[local.weekday()]} {local.day} {_MONTHS[local.month - 1]}"
    return f"{day} {local:%H:%M} {local.tzname()}"
