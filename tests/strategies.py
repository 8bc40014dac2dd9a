"""Hypothesis strategies and settings shared by the property tests: IANA zones weighted
towards odd ones, instants near real clock changes, and valid cron expressions built with the
values each field allows.

Every property runs derandomized with no example database, so CI sees the same examples on
every run.
"""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

MINUTE = timedelta(minutes=1)


def properties(examples: int) -> settings:
    """The same examples on every run (CI must not flake on a new random draw)."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


# --- Zones and instants --------------------------------------------------------------------

# "localtime" is the server's own zone, which parse_zone refuses as a name to store.
ALL_ZONES = tuple(sorted(zoneinfo.available_timezones() - {"localtime"}))
ODD_ZONES = (
    "Australia/Lord_Howe",  # 30-minute DST
    "America/Santiago",  # switches at midnight
    "Europe/Dublin",  # negative DST in tzdata (winter is the "saving")
    "Asia/Tehran",  # switched at midnight, until 2022
    "Pacific/Chatham",  # +12:45 / +13:45
    "Antarctica/Troll",  # 2-hour DST
    "Antarctica/Casey",  # 3-hour jumps in 2009-2011
    "Pacific/Apia",  # skipped 30 December 2011 entirely
    "Africa/Casablanca",  # DST suspended for Ramadan: four changes a year
    "America/Havana",  # switches at midnight
    "Asia/Gaza",
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
)
# Zones whose clocks change in 2026: most of what is left of tzdata's rules, in every region.
DST_ZONES = tuple(
    name
    for name in ALL_ZONES
    if datetime(2026, 1, 15, tzinfo=ZoneInfo(name)).utcoffset()
    != datetime(2026, 7, 15, tzinfo=ZoneInfo(name)).utcoffset()
)
ZONES = st.one_of(
    st.sampled_from(ODD_ZONES), st.sampled_from(DST_ZONES), st.sampled_from(ALL_ZONES)
)
YEARS = st.integers(1995, 2040)  # whole-minute offsets everywhere; tzdata's rules beyond 2037
# True three times in four (hypothesis leans to the first choice while it explores).
MOSTLY = st.sampled_from([True, True, True, False])
# Mostly a few hours from a transition (where gaps and folds are), sometimes a day or more.
NEAR = st.one_of(st.integers(-180, 180), st.integers(-36 * 60, 36 * 60))


def wall(moment: datetime, zone: ZoneInfo) -> datetime:
    """What the zone's clocks read at `moment`, as a naive date-time."""
    return moment.astimezone(zone).replace(tzinfo=None)


def offset(moment: datetime, zone: ZoneInfo) -> timedelta | None:
    return moment.astimezone(zone).utcoffset()


@functools.cache
def transitions(zone_name: str, year: int) -> tuple[datetime, ...]:
    """The UTC minutes in `year` at which the zone's clocks change, found by bisection."""
    zone, step = ZoneInfo(zone_name), timedelta(hours=12)
    found: list[datetime] = []
    low = datetime(year, 1, 1, tzinfo=UTC)
    while low.year == year:
        if offset(low, zone) != offset(low + step, zone):
            found.append(_first_minute_of_new_offset(zone, low, low + step))
        low += step
    return tuple(found)


def _first_minute_of_new_offset(zone: ZoneInfo, low: datetime, high: datetime) -> datetime:
    before = offset(low, zone)
    while high - low > MINUTE:
        middle = low + (high - low) // MINUTE // 2 * MINUTE
        low, high = (middle, high) if offset(middle, zone) == before else (low, middle)
    return high


@dataclass(frozen=True)
class Moment:
    zone: str
    utc: datetime
    change: datetime | None  # the transition `utc` was drawn near, if any
    # Hours of the wall clock around that transition, for rules aimed at it.
    hours: tuple[int, ...]


@st.composite
def moments(draw: st.DrawFn) -> Moment:
    zone, year = draw(ZONES), draw(YEARS)
    changes = transitions(zone, year)
    seconds = timedelta(seconds=draw(st.integers(0, 59)))
    if changes and draw(MOSTLY):
        change = draw(st.sampled_from(changes))
        before = wall(change - MINUTE, ZoneInfo(zone))
        # The hour that repeats or is skipped first, then the hours around it.
        jump = wall(change, ZoneInfo(zone)) - before - MINUTE
        first = before if jump < timedelta(0) else before + MINUTE
        hours = tuple(dict.fromkeys((first + timedelta(hours=k)).hour for k in (0, -1, 1)))
        return Moment(zone, change + draw(NEAR) * MINUTE + seconds, change, hours)
    moment = datetime(year, 1, 1, tzinfo=UTC) + draw(st.integers(0, 365 * 24 * 60)) * MINUTE
    return Moment(zone, moment + seconds, None, ())


# --- Cron expressions, with the values each field allows worked out as they are built ---------


@dataclass(frozen=True)
class Field:
    text: str
    values: frozenset[int]


@dataclass(frozen=True)
class Cron:
    expr: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 is Sunday; cron's 7 is folded onto it
    day_and: bool  # Debian cron: day-of-month AND day-of-week when either starts with "*"
    fixed: bool  # minute and hour both explicit: fires once in a repeated hour

    def matches(self, shown: datetime) -> bool:
        if not (shown.minute in self.minutes and shown.hour in self.hours):
            return False
        if shown.month not in self.months:
            return False
        by_date, by_weekday = shown.day in self.days, shown.isoweekday() % 7 in self.weekdays
        return (by_date and by_weekday) if self.day_and else (by_date or by_weekday)


def daily(minute: int, hour: int) -> Cron:
    every = frozenset(range(32))
    return Cron(f"{minute} {hour} * * *", frozenset({minute}), frozenset({hour}), every, every,
                every, day_and=True, fixed=True)  # fmt: skip


MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def spelled(draw: st.DrawFn, value: int, low: int, names: tuple[str, ...]) -> str:
    index = value - low
    if index < len(names) and draw(st.booleans()):
        return draw(st.sampled_from([names[index], names[index].upper()]))
    return str(value)


@st.composite
def terms(draw: st.DrawFn, low: int, high: int, names: tuple[str, ...]) -> Field:
    """`a`, `a-b` or `a-b/n`."""
    start = draw(st.integers(low, high))
    first, kind = spelled(draw, start, low, names), draw(st.sampled_from("1-/"))
    if kind == "1":
        return Field(first, frozenset({start}))
    end = draw(st.integers(start, high))
    text = f"{first}-{spelled(draw, end, low, names)}"
    if kind == "-":
        return Field(text, frozenset(range(start, end + 1)))
    step = draw(st.integers(1, high - low + 1))
    return Field(f"{text}/{step}", frozenset(range(start, end + 1, step)))


@st.composite
def fields(
    draw: st.DrawFn,
    low: int,
    high: int,
    shapes: str,
    names: tuple[str, ...] = (),
    list_high: int | None = None,
) -> Field:
    """`*`, `*/n` or a list of terms; `shapes` weights them ("*", "/", ",")."""
    shape = draw(st.sampled_from(shapes))
    if shape == "*":
        return Field("*", frozenset(range(low, high + 1)))
    if shape == "/":
        step = draw(st.integers(1, high - low + 1))
        return Field(f"*/{step}", frozenset(range(low, high + 1, step)))
    parts = draw(
        st.lists(
            terms(low, high if list_high is None else list_high, names), min_size=1, max_size=3
        )
    )
    return Field(",".join(p.text for p in parts), frozenset().union(*(p.values for p in parts)))


@st.composite
def crons(draw: st.DrawFn, hours: tuple[int, ...] = ()) -> Cron:
    """Any valid expression; given `hours`, mostly one aimed at them on every day."""
    minute = draw(fields(0, 59, ",*/,,,"))
    aimed = bool(hours) and draw(MOSTLY)
    if aimed:
        hour = Field(",".join(map(str, hours)), frozenset(hours))
    else:
        hour = draw(fields(0, 23, "**/,,,"))
    shape = "*" if aimed and draw(MOSTLY) else None
    month = draw(fields(1, 12, shape or "****/,", MONTH_NAMES))
    # A list of days past the 28th in chosen months might never match; cron refuses those.
    day = draw(fields(1, 31, shape or "****/,,", list_high=31 if month.text == "*" else 28))
    weekday = draw(fields(0, 7, shape or "****/,,", DAY_NAMES))
    gap = draw(st.sampled_from([" ", "  ", "\t"]))
    expr = gap.join(f.text for f in (minute, hour, day, month, weekday))
    return Cron(
        expr=draw(st.sampled_from(["", " "])) + expr,
        minutes=minute.values,
        hours=hour.values,
        days=day.values,
        months=month.values,
        weekdays=frozenset(value % 7 for value in weekday.values),
        day_and=day.text.startswith("*") or weekday.text.startswith("*"),
        fixed=not minute.text.startswith("*") and not hour.text.startswith("*"),
    )
