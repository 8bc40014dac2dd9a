"""Hypothesis properties for the time rules in bulletin.scheduling, and for the parsers.

The scheduling properties compare the code with references written here, slow but obviously
right: they read the zone's wall clock one UTC minute at a time and apply the policy that
bulletin.scheduling.rules states (a skipped wall time fires at the first minute after the gap;
a fixed-time rule fires once in a repeated hour, at the first; a wildcard rule follows elapsed
time). Zones come from every IANA zone, weighted towards odd ones, and instants mostly fall
near one of the zone's real transitions, where the rules can go wrong.

Every property runs derandomized with no example database, so CI sees the same examples on
every run; the whole module stays well under 30 seconds.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import zoneinfo
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from bulletin.channels.base import Recipient
from bulletin.channels.render import render_html
from bulletin.dispatch.announcements import parse_local
from bulletin.domain.models import Employee
from bulletin.interfaces.roster import (
    ImportRejected,
    import_employees,
    preview_employees,
    read_rows,
    validate_rows,
)
from bulletin.scheduling.planner import PlannedOccurrence, Schedule, plan
from bulletin.scheduling.rules import (
    CronRule,
    OneOffRule,
    ScheduleError,
    fire_times,
    next_fire_after,
    parse_zone,
    resolve_one_off,
)

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


# --- The brute-force references ------------------------------------------------------------

# Longer than any stretch of wall time that repeats: the longest in 1995-2040 is Antarctica/
# Casey's 3 hours (checked by scanning every zone).
LOOKBACK = timedelta(hours=4)


def skipped_walls(previous: datetime, shown: datetime) -> Iterator[datetime]:
    """Wall minutes the clock jumped over between two readings one minute apart."""
    moment = previous + MINUTE
    while moment < shown:
        yield moment
        moment += MINUTE


def reference_fires(cron: Cron, zone: ZoneInfo, after: datetime, until: datetime) -> list[datetime]:
    """The stated policy, applied by reading the clock at every UTC minute in (after, until].

    A matching wall time the clock jumps over fires at the first minute after the jump; a
    fixed-time rule fires for a wall time only the first time the clock shows it.
    """
    fires: list[datetime] = []
    minute = after.replace(second=0, microsecond=0) - LOOKBACK
    previous, seen = wall(minute - MINUTE, zone), set()
    while minute <= until:
        shown = wall(minute, zone)
        jumped = any(cron.matches(missing) for missing in skipped_walls(previous, shown))
        again = cron.fixed and shown in seen
        if minute > after and (jumped or (cron.matches(shown) and not again)):
            fires.append(minute)
        seen.add(shown)
        previous, minute = shown, minute + MINUTE
    return fires


def instants_showing(at: datetime, zone: ZoneInfo) -> list[datetime]:
    """Every UTC minute at which the zone's clocks read `at` (UTC offsets are -12h to +14h)."""
    start = at.replace(tzinfo=UTC) - timedelta(hours=15)
    minutes = (start + k * MINUTE for k in range(30 * 60))
    return [minute for minute in minutes if wall(minute, zone) == at]


def first_minute_reading_at_least(at: datetime, zone: ZoneInfo) -> datetime:
    minute = at.replace(tzinfo=UTC) - timedelta(hours=15)
    while wall(minute, zone) < at:
        minute += MINUTE
    return minute


# --- Cron fire times -------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    zone: ZoneInfo
    cron: Cron
    after: datetime
    until: datetime


@st.composite
def windows(draw: st.DrawFn, longest: timedelta = timedelta(hours=36)) -> Window:
    """Mostly a window that starts up to 8 hours before a transition and runs past it."""
    moment = draw(moments())
    cron, zone = draw(crons(moment.hours)), ZoneInfo(moment.zone)
    # Hypothesis leans to small integers, so they shorten a long window rather than lengthen
    # a short one.
    most = longest // MINUTE
    if moment.change and draw(MOSTLY):
        after = moment.change - (8 * 60 - draw(st.integers(0, 8 * 60 - 1))) * MINUTE
        until = moment.change + (most // 2 - draw(st.integers(0, most // 2))) * MINUTE
        return Window(zone, cron, after + (moment.utc - moment.utc.replace(second=0)), until)
    length = (most - draw(st.integers(0, most - 1))) * MINUTE
    return Window(zone, cron, moment.utc, moment.utc + length)


def lord_howe_quarter_hours() -> Window:
    """Lord Howe's 30-minute fall-back with a wildcard rule, a case cronsim alone gets wrong."""
    every = frozenset(range(32))
    cron = Cron("*/15 1,2 * * *", frozenset({0, 15, 30, 45}), frozenset({1, 2}), every, every,
                every, day_and=True, fixed=False)  # fmt: skip
    after = datetime(2026, 4, 4, 14, 0, tzinfo=UTC)
    return Window(ZoneInfo("Australia/Lord_Howe"), cron, after, after + timedelta(hours=3))


def apia_lost_day() -> Window:
    after = datetime(2011, 12, 29, tzinfo=UTC)
    return Window(ZoneInfo("Pacific/Apia"), daily(0, 9), after, after + timedelta(hours=36))


def crosses(window: Window) -> bool:
    return offset(window.after, window.zone) != offset(window.until, window.zone)


STEPS = 40  # fires compared per window: enough to cross a transition, cheap for "* * * * *"


@properties(examples=100)
@given(window=windows())
@example(window=lord_howe_quarter_hours())
@example(window=apia_lost_day())
def test_stepping_from_fire_to_fire_finds_exactly_the_fires_a_minute_by_minute_scan_finds(
    window: Window,
) -> None:
    rule, expected = CronRule(window.cron.expr), reference_fires(**vars(window))[:STEPS]
    found: list[datetime] = []
    moment = window.after
    while len(found) < STEPS:
        fire = next_fire_after(rule, window.zone, moment)
        if fire is None or fire > window.until:
            break
        found.append(fire)
        moment = fire
    event("DST changes inside the window" if crosses(window) else "no DST change")
    event(f"{len(expected)} fires" if len(expected) < 3 else "3+ fires")
    assert found == expected


@properties(examples=120)
@given(moment=moments(), cron=crons())
def test_fires_over_years_are_whole_utc_minutes_strictly_increasing_on_the_rules_wall_times(
    moment: Moment, cron: Cron
) -> None:
    zone = ZoneInfo(moment.zone)
    fires = list(fire_times(CronRule(cron.expr), zone, moment.utc, limit=24))
    assert fires, "a valid rule always fires again"
    instants = [fire.utc for fire in fires]
    assert all(t.tzinfo is UTC and t.second == t.microsecond == 0 for t in instants)
    assert all(a < b for a, b in itertools.pairwise([moment.utc, *instants]))
    for fire in fires:
        shown = wall(fire.utc, zone)
        # Not `fire.local == fire.utc`: PEP 495 makes a fold=1 time unequal across zones.
        assert fire.local.astimezone(UTC) == fire.utc and fire.local.replace(tzinfo=None) == shown
        jumped = list(skipped_walls(wall(fire.utc - MINUTE, zone), shown))
        assert cron.matches(shown) or any(cron.matches(missing) for missing in jumped)
        if fire.note and "does not exist" in fire.note:
            assert jumped, f"{fire} has a gap note but no gap precedes it"


@properties(examples=80)
@given(window=windows(longest=timedelta(hours=48)))
def test_a_wall_time_fires_twice_only_for_a_wildcard_rule_in_a_repeated_hour(
    window: Window,
) -> None:
    rule = CronRule(window.cron.expr)
    fires = fire_times(rule, window.zone, window.after, until=window.until, limit=500)
    shown = Counter(fire.local.replace(tzinfo=None) for fire in fires)
    for local, count in shown.items():
        if count > 1:
            assert not window.cron.fixed, f"fixed-time rule fired twice at {local}"
            assert count == 2 and len(instants_showing(local, window.zone)) == 2


@properties(examples=60)
@given(cron=crons())
def test_every_generated_cron_expression_is_accepted_as_written(cron: Cron) -> None:
    assert CronRule(cron.expr).expr == " ".join(cron.expr.split())


# --- One-off times ----------------------------------------------------------------------------


@st.composite
def local_times(draw: st.DrawFn) -> tuple[ZoneInfo, datetime]:
    """A zone and a naive wall time, mostly within two hours of a change of its clocks."""
    name, year = draw(ZONES), draw(YEARS)
    zone, changes = ZoneInfo(name), transitions(name, year)
    if changes and draw(MOSTLY):
        before = wall(draw(st.sampled_from(changes)) - MINUTE, zone)
        # A repeated stretch ends at `before`; a skipped one starts a minute after it.
        side = draw(st.sampled_from(["after", "before", "around"]))
        if side == "after":
            return zone, before + (1 + draw(st.integers(0, 59))) * MINUTE
        if side == "before":
            return zone, before - draw(st.integers(0, 59)) * MINUTE
        return zone, before + draw(st.integers(-90, 150)) * MINUTE
    return zone, datetime(year, 1, 1) + draw(st.integers(0, 365 * 24 * 60)) * MINUTE


@properties(examples=100)
@given(case=local_times(), fold=st.sampled_from([None, 0, 1]))
@example(case=(ZoneInfo("America/Santiago"), datetime(2026, 9, 6, 0, 30)), fold=None)
@example(case=(ZoneInfo("Australia/Lord_Howe"), datetime(2026, 4, 5, 1, 45)), fold=1)
def test_a_one_off_time_resolves_to_the_instant_that_shows_it_or_is_refused(
    case: tuple[ZoneInfo, datetime], fold: int | None
) -> None:
    zone, at = case
    shows = instants_showing(at, zone)
    event(("in a gap", "shown once", "in a repeated hour")[len(shows)])
    if len(shows) == 1 or (len(shows) == 2 and fold is not None):
        chosen = shows[fold or 0] if len(shows) == 2 else shows[0]
        assert resolve_one_off(OneOffRule(at, fold=fold), zone) == chosen
        assert wall(chosen, zone) == at  # local -> UTC -> local round trip
    else:
        problem = "occurs twice" if shows else "does not exist"
        with pytest.raises(ScheduleError, match=problem):
            resolve_one_off(OneOffRule(at, fold=fold), zone)


@properties(examples=100)
@given(case=local_times())
def test_a_lenient_one_off_fires_once_when_the_clock_first_reads_that_time_or_later(
    case: tuple[ZoneInfo, datetime],
) -> None:
    # Gap: the first minute after it; fold: the first copy; otherwise the time itself.
    zone, at = case
    expected = first_minute_reading_at_least(at, zone)
    rule = OneOffRule(at, strict=False)
    assert resolve_one_off(rule, zone) == expected
    fires = list(fire_times(rule, zone, expected - timedelta(days=2)))
    assert [fire.utc for fire in fires] == [expected]
    assert list(fire_times(rule, zone, expected)) == []


# --- Per-recipient local time through the planner ---------------------------------------------


@dataclass(frozen=True)
class Rollout:
    cron: Cron
    zones: tuple[str, ...]
    start: datetime
    ticks: tuple[datetime, ...]  # in the order they run: the clock may go backwards
    grace: timedelta


@st.composite
def rollouts(draw: st.DrawFn) -> Rollout:
    moment = draw(moments())
    others = draw(st.lists(ZONES, min_size=1, max_size=3))
    hour = moment.hours[0] if moment.hours and draw(MOSTLY) else draw(st.integers(0, 23))
    start = moment.utc
    if moment.change:
        start = moment.change - draw(st.integers(1, 12 * 60)) * MINUTE
    offsets = draw(st.lists(st.integers(1, 3 * 24 * 60), max_size=7))
    # One tick at least a day on, run at any point in the sequence (later ones go back).
    offsets.insert(
        draw(st.integers(0, len(offsets))), 3 * 24 * 60 - draw(st.integers(0, 2 * 24 * 60))
    )
    return Rollout(
        cron=daily(draw(st.integers(0, 59)), hour),
        zones=tuple(sorted({moment.zone, *others})),
        start=start,
        ticks=tuple(start + k * MINUTE for k in offsets),
        grace=draw(st.integers(0, 180)) * MINUTE,
    )


def planned_by_ticks(rollout: Rollout, schedule: Schedule) -> list[PlannedOccurrence]:
    """Every occurrence the ticks record, carrying the cursor from one to the next."""
    planned: list[PlannedOccurrence] = []
    cursor, next_look = rollout.start, rollout.start
    for now in rollout.ticks:
        result = plan(schedule, cursor, now)
        for occurrence in result.occurrences:
            assert occurrence.missed == (now - occurrence.fire_at > rollout.grace)
        planned.extend(result.occurrences)
        cursor, next_look = result.cursor, result.next_fire_at or cursor
    # The planner must look again no later than the next fire in any zone.
    upcoming = [next_fire_after(schedule.rule, parse_zone(z), cursor) for z in rollout.zones]
    assert next_look <= min(t for t in upcoming if t is not None)
    return planned


@properties(examples=40)
@given(rollout=rollouts())
def test_each_recipient_zone_gets_each_local_slot_once_however_the_ticks_fall(
    rollout: Rollout,
) -> None:
    schedule = Schedule(CronRule(rollout.cron.expr), rollout.zones, True, rollout.grace)
    planned = planned_by_ticks(rollout, schedule)
    event("a DST note" if any(o.note for o in planned) else "no DST note")
    assert len({(o.zone, o.fire_at) for o in planned}) == len(planned), "a slot planned twice"
    end = max(rollout.ticks)
    for name in rollout.zones:
        got = [o.fire_at for o in planned if o.zone == name]
        assert got == reference_fires(rollout.cron, ZoneInfo(name), rollout.start, end)
    # The same wall-clock slot in two zones is one instant only where their offsets agree.
    shown = [(o, o.fire_at.astimezone(ZoneInfo(o.zone))) for o in planned]
    for (a, a_local), (b, b_local) in itertools.combinations(shown, 2):
        if a.zone != b.zone and a_local.replace(tzinfo=None) == b_local.replace(tzinfo=None):
            assert (a.fire_at == b.fire_at) == (a_local.utcoffset() == b_local.utcoffset())


# --- The cron and zone parsers ---------------------------------------------------------------

# Field values no cron accepts in any position (out of range, malformed, non-ASCII digits).
GARBAGE_FIELDS = st.one_of(
    st.sampled_from(["?", "a", "1-", "-1", "*/0", "5-1", "1,,2", "1/2/3", "#", "*-*", "**"]),
    st.sampled_from(["\u0663", "\uff13", "\u00b3", "1\u0661", "\u0663-5", "\u017fun", "fr\u0131"]),
    st.integers(60, 10**6).map(str),
)
OUT_OF_RANGE = {0: "60", 1: "24", 2: "32", 3: "13", 4: "8"}


@properties(examples=200)
@given(text=st.text(max_size=40))
@example(text="0" * 5000 + " * * * *")
@example(text="@daily")
def test_any_text_is_either_a_cron_rule_or_one_schedule_error_line(text: str) -> None:
    try:
        rule = CronRule(text)
    except ScheduleError as exc:
        message = str(exc)
        assert message.startswith("invalid cron expression") and "\n" not in message
    else:
        assert len(rule.expr.split()) == 5
        next_fire_after(rule, ZoneInfo("UTC"), datetime(2030, 1, 1, tzinfo=UTC))


@properties(examples=100)
@given(cron=crons(), position=st.integers(0, 4), junk=GARBAGE_FIELDS)
def test_a_generated_cron_expression_with_one_field_spoiled_is_refused(
    cron: Cron, position: int, junk: str
) -> None:
    parts = cron.expr.split()
    parts[position] = junk
    with pytest.raises(ScheduleError, match="invalid cron expression"):
        CronRule(" ".join(parts))


@pytest.mark.parametrize("position, value", sorted(OUT_OF_RANGE.items()))
def test_a_value_just_out_of_a_fields_range_is_refused(position: int, value: str) -> None:
    parts = ["0", "0", "1", "1", "0"]
    parts[position] = value
    with pytest.raises(ScheduleError, match="invalid cron expression"):
        CronRule(" ".join(parts))


def test_a_stepped_range_of_one_value_fires_at_that_value_only() -> None:
    # Found by the fire-to-fire property: cronsim alone reads "0-0/5" as every 5 minutes.
    rule = CronRule("0-0/5 * * * *")
    fires = fire_times(rule, ZoneInfo("UTC"), datetime(2030, 1, 1, tzinfo=UTC), limit=3)
    assert [(fire.utc.hour, fire.utc.minute) for fire in fires] == [(1, 0), (2, 0), (3, 0)]


@pytest.mark.parametrize("expr", ["0 0 * * \u017fun", "0 0 * * fr\u0131", "0 0 * \u017fep *"])
def test_a_non_ascii_letter_that_upper_cases_to_a_cron_name_is_refused(expr: str) -> None:
    # str.upper() turns a long s (U+017F) into S and a dotless i (U+0131) into I, so these read
    # as SUN, FRI and SEP to cronsim, which upper-cases before matching names.
    with pytest.raises(ScheduleError, match="ASCII"):
        CronRule(expr)


def test_a_cron_number_too_long_for_int_is_refused_with_a_schedule_error() -> None:
    # int() refuses strings of more than 4300 digits with a bare ValueError.
    with pytest.raises(ScheduleError, match="bad minute"):
        CronRule("0" * 5000 + " * * * *")


@properties(examples=100)
@given(name=st.one_of(st.text(max_size=30), st.sampled_from(ALL_ZONES).map(str.lower)))
@example(name="UTC\x00")
@example(name="../../etc/passwd")
def test_any_zone_name_is_either_a_zone_or_a_schedule_error(name: str) -> None:
    try:
        zone = parse_zone(name)
    except ScheduleError as exc:
        assert str(exc).startswith("unknown time zone")
    else:
        assert zone.key == name


@properties(examples=150)
@given(text=st.text(max_size=30) | st.datetimes().map(datetime.isoformat))
@example(text="2026-03-08T02:30+01:00")
@example(text="2026-13-01T09:00")
def test_any_text_is_either_a_local_date_time_or_one_schedule_error(text: str) -> None:
    try:
        at = parse_local(text)
    except ScheduleError as exc:
        assert str(exc).startswith(f"'{text}'")
    else:
        assert at.tzinfo is None and at.second == at.microsecond == 0


# --- The employee CSV import ------------------------------------------------------------------


@properties(examples=200)
@given(data=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
@example(data=b"email,name,department,location,timezone\n\xff")
@example(data=b'email,name,department,location,timezone\n"a@b.test,"x')
def test_arbitrary_bytes_are_read_or_rejected_with_line_numbered_errors(data: bytes) -> None:
    try:
        validate_rows(read_rows(data))
    except ImportRejected as exc:
        lines = data.count(b"\n") + data.count(b"\r") + 1
        assert exc.errors and all(1 <= e.line <= lines and e.message for e in exc.errors)


CELL = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
REQUIRED_COLUMNS = ["email", "name", "department", "location", "timezone"]


@st.composite
def csv_like(draw: st.DrawFn) -> bytes:
    """The required header (any case and order, maybe more columns) over rows of hostile cells."""
    extra = draw(st.lists(st.sampled_from(["active", "email"]) | CELL, max_size=2))
    header = draw(st.permutations(REQUIRED_COLUMNS + extra))
    header = [name.upper() if draw(st.booleans()) else name for name in header]
    rows = draw(st.lists(st.lists(CELL | st.sampled_from(ALL_ZONES), max_size=8), max_size=5))
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    return out.getvalue().encode()


@pytest.mark.django_db
@properties(examples=60)
@given(data=csv_like())
def test_csv_shaped_hostile_files_are_previewed_or_rejected_never_crash(data: bytes) -> None:
    with transaction.atomic():
        try:
            preview_employees(data)
        except ImportRejected as exc:
            assert all(error.line >= 1 and "\n" not in error.message for error in exc.errors)
        transaction.set_rollback(True)


def trimmed(text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return text.map(str.strip)


TEXT = st.characters(codec="utf-8", exclude_categories=["Cc", "Cs", "Zl", "Zp"])


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    department: str
    location: str
    timezone: str
    active: str  # as written in the file; "" when the column is absent


EMAILS = st.from_regex(
    r"[A-Za-z0-9]{1,10}(\.[a-z0-9]{1,5})?@[a-z]{1,8}\.(com|org|test)", fullmatch=True
)
PLACES = st.sampled_from(["Paris, FR", 'The "Hub"', "Zürich", ""]) | st.text(TEXT, max_size=20)
PEOPLE = st.builds(
    Person,
    email=EMAILS,
    name=trimmed(st.text(TEXT, min_size=1, max_size=40)).filter(bool),
    department=trimmed(st.text(TEXT, max_size=30)),
    location=trimmed(PLACES),
    timezone=st.sampled_from(ALL_ZONES),
    active=st.sampled_from(["yes", "no", "TRUE", "false", "1", "0", "Y", "n", ""]),
)


@dataclass(frozen=True)
class RosterFile:
    people: tuple[Person, ...]
    data: bytes
    has_active: bool


@st.composite
def roster_files(draw: st.DrawFn) -> RosterFile:
    people = draw(st.lists(PEOPLE, min_size=1, max_size=6, unique_by=lambda p: p.email.lower()))
    columns = ["email", "name", "department", "location", "timezone", "active", "employee id"]
    columns = draw(st.permutations(columns))
    has_active = draw(st.booleans())
    columns = [c for c in columns if c != "active" or has_active]
    out = io.StringIO()
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    writer = csv.writer(out, quoting=quoting, lineterminator=draw(st.sampled_from(["\r\n", "\n"])))
    writer.writerow([c.title() if draw(st.booleans()) else c for c in columns])
    for person in people:
        cells = {**vars(person), "employee id": "E-1, E-2"}
        writer.writerow([cells[c] for c in columns])
    bom = "\ufeff" if draw(st.booleans()) else ""
    return RosterFile(tuple(people), (bom + out.getvalue()).encode(), has_active)


def stored(person: Person, has_active: bool) -> tuple[str, str, str, str, bool]:
    active = person.active.lower() not in {"0", "false", "no", "n"} if has_active else True
    return (person.name, person.department, person.location, person.timezone, active)


@pytest.mark.django_db
@properties(examples=40)
@given(roster=roster_files())
@example(
    roster=RosterFile(
        (Person("Zoe@Example.test", "Núñez, Zoë", "R&D", 'The "Hub"', "Asia/Tehran", ""),),
        '\ufeffemail,name,department,location,timezone\r\nZoe@Example.test,"Núñez, Zoë",R&D,'
        '"The ""Hub""",Asia/Tehran\r\n'.encode(),
        has_active=False,
    )
)
def test_a_generated_roster_imports_to_exactly_those_employees_and_again_changes_nothing(
    roster: RosterFile,
) -> None:
    with transaction.atomic():
        report = import_employees(roster.data)
        assert report.created == len(roster.people)
        rows = Employee.objects.values_list(
            "email", "name", "department", "location", "timezone", "active"
        )
        assert {email: tuple(rest) for email, *rest in rows} == {
            p.email.lower(): stored(p, roster.has_active) for p in roster.people
        }
        assert import_employees(roster.data).unchanged == len(roster.people)
        transaction.set_rollback(True)


# --- The Markdown renderer --------------------------------------------------------------------

HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//x.test/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)" onclick="alert(1)">x</a>',
    "<svg/onload=alert(1)>",
    "<iframe src=javascript:alert(1)></iframe>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](&#x6A;avascript&colon;alert(1))",
    "[x](java&#x09;script:alert(1))",
    "[x](<javascript:alert(1)>)",
    "[x]( javascript:alert(1) )",
    "![x](javascript:alert(1))",
    "<javascript:alert(1)>",
    "[x][r]\n\n[r]: javascript:alert(1)\n",
    "[x](vbscript:msgbox(1))",
    '<div style="background:url(javascript:alert(1))">',
    "<!-- --><script>alert(1)</script><!-- -->",
    "```\n</code><script>alert(1)</script>\n```",
    "`<script>`",
    "| a | [x](javascript:alert(1)) |\n|---|---|\n| <b onmouseover=alert(1)>b</b> | c |",
    "~~<script>~~",
    "*<script>*",
    "<math><mi xlink:href=javascript:alert(1)>x</mi></math>",
    "{{name}}",
    "{{ first_name }}",
    "[x]({{name}})",
    '[x](https://a.test "{{name}}")',
    "<{{email}}>",
    "![{{name}}](https://a.test/i.png)",
    '"><script>alert(1)</script>',
    "javascript:alert(1)",
]
BODY_PIECES = st.sampled_from(HOSTILE) | st.text(max_size=10)
JOINERS = st.sampled_from(["", " ", "\n", "\n\n", "\n> ", "\n- ", "\n# ", "\t"])
HOSTILE_NAMES = ['<script>alert("x")</script>', '" onmouseover="alert(1)', "javascript:alert(1)"]
NAMES = st.sampled_from([*HOSTILE_NAMES, "Ann"]) | st.text(max_size=15)
# Attributes a browser follows as a URL: text in title or alt that reads "javascript:" is inert.
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "poster", "background"}


@st.composite
def hostile_bodies(draw: st.DrawFn) -> str:
    pieces = draw(st.lists(BODY_PIECES, min_size=1, max_size=6))
    return "".join(piece + draw(JOINERS) for piece in pieces)


class Tags(HTMLParser):
    """The start tags of an HTML fragment, with their attributes as a browser would read them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def dangerous(output: str) -> list[str]:
    parser = Tags()
    parser.feed(output)
    parser.close()
    problems = ["<script"] if "<script" in output.lower() else []
    for tag, attrs in parser.found:
        problems += [tag] if tag in {"script", "iframe", "object", "embed", "svg", "math"} else []
        for name, value in attrs:
            # Browsers ignore whitespace and control characters inside a URL's scheme.
            squeezed = "".join(c for c in (value or "") if c > " ").lower()
            scripted = squeezed.startswith(("javascript:", "vbscript:"))
            if name.startswith("on") or (name in URL_ATTRIBUTES and scripted):
                problems.append(f"{tag} {name}={value!r}")
    return problems


@properties(examples=200)
@given(body=hostile_bodies(), name=NAMES)
def test_rendered_markdown_never_carries_a_script_an_event_handler_or_a_javascript_url(
    body: str, name: str
) -> None:
    output = render_html(body, Recipient(email=name, name=name, timezone="UTC"))
    assert dangerous(output) == []
