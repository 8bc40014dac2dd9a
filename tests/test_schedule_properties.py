"""Hypothesis properties for the time rules in bulletin.scheduling.

They compare the code with references written here, slow but obviously right: they read the
zone's wall clock one UTC minute at a time and apply the policy that bulletin.scheduling.rules
states, Debian cron's (a fixed-time rule's wall time that a gap skipped fires at the first
minute after the gap, and fires once in a repeated hour, at the first; a wildcard rule follows
elapsed time both ways: what a gap skipped is gone, a repeated hour fires twice). Zones come from
every IANA zone, weighted towards odd ones, and instants mostly fall near one of the zone's real
transitions, where the rules can go wrong (tests/strategies.py).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

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
from tests.strategies import (
    MINUTE,
    MOSTLY,
    YEARS,
    ZONES,
    Cron,
    Moment,
    crons,
    daily,
    moments,
    offset,
    properties,
    transitions,
    wall,
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

    For a fixed-time rule, a matching wall time the clock jumps over fires at the first
    minute after the jump, and a wall time fires only the first time the clock shows it. A
    wildcard rule fires whenever the clock shows a matching wall time, and never for one the
    clock jumped over.
    """
    fires: list[datetime] = []
    minute = after.replace(second=0, microsecond=0) - LOOKBACK
    previous, seen = wall(minute - MINUTE, zone), set()
    while minute <= until:
        shown = wall(minute, zone)
        skipped = skipped_walls(previous, shown)
        jumped = cron.fixed and any(cron.matches(missing) for missing in skipped)
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
        moved = cron.fixed and any(cron.matches(missing) for missing in jumped)
        assert cron.matches(shown) or moved
        if fire.note and "does not exist" in fire.note and "; fires at" in fire.note:
            assert jumped, f"{fire} has a gap note but no gap precedes it"
        if fire.note and "this schedule skips" in fire.note:
            assert not cron.fixed, f"{fire}: a fixed-time rule never skips a gap time"


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
