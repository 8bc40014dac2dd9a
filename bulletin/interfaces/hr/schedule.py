"""Schedules in words: the friendly recurrence builder, gap/fold questions, upcoming fire times.

Pure functions over strings and datetimes (no requests, no ORM), shared by the compose form and
the live ``/hr/fire-times/`` endpoint so both say exactly the same thing. Every DST rule itself
lives in ``bulletin.scheduling.rules``; this module only phrases its answers for people.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bulletin.dispatch.announcements import parse_local
from bulletin.scheduling.rules import (
    CronRule,
    FireTime,
    OneOffRule,
    Rule,
    ScheduleError,
    fire_times,
    local_choices,
    parse_zone,
)

# cron day-of-week numbers, Monday first as people read a week.
WEEKDAYS: tuple[tuple[str, str], ...] = (
    ("1", "Mon"),
    ("2", "Tue"),
    ("3", "Wed"),
    ("4", "Thu"),
    ("5", "Fri"),
    ("6", "Sat"),
    ("0", "Sun"),
)
_DAY_NAMES = {number: name for number, name in WEEKDAYS}
_LONG_DAY_NAMES = {
    "1": "Monday",
    "2": "Tuesday",
    "3": "Wednesday",
    "4": "Thursday",
    "5": "Friday",
    "6": "Saturday",
    "0": "Sunday",
}

REPEATS: tuple[tuple[str, str], ...] = (
    ("daily", "Every day"),
    ("weekdays", "Every weekday (Monday to Friday)"),
    ("weekly", "Weekly, on chosen days"),
    ("monthly", "Monthly, on a day of the month"),
    ("custom", "Custom (cron expression)"),
)

# A short list people recognise; the form adds every zone employees are in, and free text.
COMMON_ZONES: tuple[str, ...] = (
    "UTC",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Amsterdam",
    "Europe/Stockholm",
    "Europe/Warsaw",
    "Europe/Helsinki",
    "Europe/Athens",
    "Europe/Istanbul",
    "Africa/Lagos",
    "Africa/Johannesburg",
    "Africa/Nairobi",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Perth",
    "Australia/Sydney",
    "Pacific/Auckland",
    "America/St_Johns",
    "America/Halifax",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Mexico_City",
    "America/Bogota",
    "America/Sao_Paulo",
    "America/Santiago",
)

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class BuilderError(ValueError):
    """A builder choice that cannot become a cron expression; ``field`` names the input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def parse_time(value: str) -> tuple[int, int]:
    """(hour, minute) from "HH:MM" (a browser's time input may add ":SS", which is dropped)."""
    text = value.strip()
    if len(text) == 8 and text[5:] == ":00":
        text = text[:5]
    match = _TIME.match(text)
    if not match:
        raise BuilderError("time_of_day", "give a time of day as HH:MM, e.g. 09:00")
    return int(match.group(1)), int(match.group(2))


def build_cron(
    repeat: str, time_of_day: str, weekdays: Sequence[str], month_day: int | None
) -> str:
    """The cron expression for a builder choice ("custom" is not a builder choice)."""
    hour, minute = parse_time(time_of_day)
    if repeat == "daily":
        days = "* * *"
    elif repeat == "weekdays":
        days = "* * 1-5"
    elif repeat == "weekly":
        chosen = [number for number, _ in WEEKDAYS if number in set(weekdays)]
        if not chosen:
            raise BuilderError("weekdays", "choose at least one day of the week")
        days = f"* * {','.join(sorted(chosen, key=int))}"
    elif repeat == "monthly":
        if month_day is None or not 1 <= month_day <= 31:
            raise BuilderError("month_day", "choose a day of the month from 1 to 31")
        days = f"{month_day} * *"
    else:
        raise BuilderError("repeat", "choose how often it repeats")
    return f"{minute} {hour} {days}"


@dataclass(frozen=True)
class Builder:
    """A cron expression read back as builder choices (``repeat`` "custom" if it is not one)."""

    repeat: str
    time_of_day: str = ""
    weekdays: tuple[str, ...] = ()
    month_day: int | None = None


def builder_of(cron: str) -> Builder:
    fields = cron.split()
    if len(fields) != 5:
        return Builder("custom")
    minute, hour, dom, month, dow = fields
    if not (minute.isdigit() and hour.isdigit() and int(minute) < 60 and int(hour) < 24):
        return Builder("custom")
    time_of_day = f"{int(hour):02d}:{int(minute):02d}"
    if month != "*":
        return Builder("custom")
    if dom == "*" and dow == "*":
        return Builder("daily", time_of_day)
    if dom == "*" and dow == "1-5":
        return Builder("weekdays", time_of_day)
    if dom == "*" and re.fullmatch(r"[0-6](,[0-6])*", dow):
        days = tuple(sorted(set(dow.split(",")), key=lambda d: (d == "0", d)))
        return Builder("weekly", time_of_day, weekdays=days)
    if dow == "*" and dom.isdigit() and 1 <= int(dom) <= 31:
        return Builder("monthly", time_of_day, month_day=int(dom))
    return Builder("custom")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def describe_cron(cron: str) -> str:
    """The cron expression in words, when the builder can say it; else the expression."""
    built = builder_of(cron)
    at = f"at {built.time_of_day}"
    if built.repeat == "daily":
        return f"Every day {at}"
    if built.repeat == "weekdays":
        return f"Every weekday {at}"
    if built.repeat == "weekly":
        names = [_LONG_DAY_NAMES[d] for d in built.weekdays]
        days = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        return f"Every {days} {at}"
    if built.repeat == "monthly" and built.month_day is not None:
        return f"On the {_ordinal(built.month_day)} of every month {at}"
    if " ".join(cron.split()) == "* * * * *":
        return "Every minute"
    return f"Custom schedule (cron “{cron}”)"


# --- Times for people ------------------------------------------------------------------------


def offset_text(moment: datetime) -> str:
    offset = moment.utcoffset()
    minutes = int(offset.total_seconds()) // 60 if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def abbreviation(moment: datetime) -> str:
    name = moment.tzname() or ""
    return name if name[:1].isalpha() else f"UTC{offset_text(moment)}"


def weekday_name(moment: datetime) -> str:
    """ "Mon" … "Sun", whatever the process locale."""
    return _DAY_NAMES[str((moment.weekday() + 1) % 7)]


def local_text(moment: datetime, *, weekday: bool = True) -> str:
    """ "Mon 14 Mar 2027, 03:00 EDT" for an aware datetime already in the zone to show."""
    day = f"{weekday_name(moment)} " if weekday else ""
    return (
        f"{day}{moment.day} {_MONTHS[moment.month - 1]} {moment.year}, "
        f"{moment:%H:%M} {abbreviation(moment)}"
    )


def when_text(moment: datetime | None, zone: zoneinfo.ZoneInfo) -> str:
    return local_text(moment.astimezone(zone)) if moment is not None else ""


def day_text(moment: datetime) -> str:
    return f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}"


# --- Gap and fold questions --------------------------------------------------------------------


@dataclass(frozen=True)
class TimeChoice:
    """One answer to "which one do you mean?": ``value`` is what the form posts back."""

    value: str
    label: str
    at_local: str
    at_fold: int | None


@dataclass(frozen=True)
class TimeQuestion:
    kind: str  # "gap" or "fold"
    message: str
    choices: tuple[TimeChoice, ...] = field(default_factory=tuple)

    def answer(self, value: str) -> TimeChoice | None:
        return next((choice for choice in self.choices if choice.value == value), None)


def time_question(at: datetime, zone: zoneinfo.ZoneInfo) -> TimeQuestion | None:
    """For a naive one-off time that does not exist or happens twice in ``zone``: the question
    to ask and its two answers (each a time the model can store). None for an ordinary time."""
    choices = local_choices(at, zone)
    if len(choices) < 2:
        return None
    first, second = (choice.astimezone(zone) for choice in choices)
    wall = f"{at:%H:%M}"
    where = f"on {day_text(at)} in {zone.key}"
    if first.replace(tzinfo=None) == at and second.replace(tzinfo=None) == at:
        message = (
            f"{wall} happens twice {where}: the clocks go back an hour, so {wall} comes round "
            f"again. Which one do you mean?"
        )
        return TimeQuestion(
            "fold",
            message,
            (
                TimeChoice(
                    "fold:0",
                    f"The first {wall}, {abbreviation(first)} ({offset_text(first)}), "
                    f"before the clocks go back",
                    at.isoformat(timespec="minutes"),
                    0,
                ),
                TimeChoice(
                    "fold:1",
                    f"The second {wall}, {abbreviation(second)} ({offset_text(second)}), "
                    f"after the clocks go back",
                    at.isoformat(timespec="minutes"),
                    1,
                ),
            ),
        )
    # The gap opens a minute after the last wall time that exists (naive wall-clock arithmetic).
    start = f"{first.replace(tzinfo=None) + timedelta(minutes=1):%H:%M}"
    message = (
        f"{wall} does not exist {where}: the clocks jump forward from {start} straight to "
        f"{second:%H:%M}. Which time do you mean?"
    )
    return TimeQuestion(
        "gap",
        message,
        tuple(
            TimeChoice(
                f"local:{moment.replace(tzinfo=None).isoformat(timespec='minutes')}",
                f"{moment:%H:%M} {abbreviation(moment)} ({offset_text(moment)}), {when}",
                moment.replace(tzinfo=None).isoformat(timespec="minutes"),
                None,
            )
            for moment, when in (
                (first, "the last minute before the clocks jump forward"),
                (second, "the first minute after"),
            )
        ),
    )


# --- Upcoming fire times -----------------------------------------------------------------------


@dataclass(frozen=True)
class Fire:
    local: str
    utc: str
    note: str


def upcoming(rule: Rule, zone: zoneinfo.ZoneInfo, after: datetime, count: int = 10) -> list[Fire]:
    """The next ``count`` fire times after ``after``, each in ``zone`` with its DST note."""
    return [as_fire(fire) for fire in fire_times(rule, zone, after, limit=count)]


def as_fire(fire: FireTime) -> Fire:
    utc = fire.utc.astimezone(UTC)
    same_day = utc.date() == fire.local.date()
    return Fire(
        local=local_text(fire.local),
        utc=f"{utc:%H:%M} UTC" if same_day else f"{day_text(utc)}, {utc:%H:%M} UTC",
        note=fire.note or "",
    )


def zone_or_none(name: str) -> zoneinfo.ZoneInfo | None:
    try:
        return parse_zone(name)
    except ScheduleError:
        return None


def rule_for(kind: str, cron: str, at_local: str, *, per_recipient: bool, fold: int | None) -> Rule:
    """The rule as the planner will build it (ScheduleError if it cannot be one)."""
    if kind == "cron":
        return CronRule(cron)
    return OneOffRule(parse_local(at_local), strict=not per_recipient, fold=fold)
