"""Tables for bulletin.scheduling.rules on real DST transitions.

Every expected instant below was worked out by hand from the zone's published rules:

* America/New_York: EST -05:00 / EDT -04:00. Forward 2026-03-08 and 2027-03-14 at 02:00 EST
  (07:00Z, 02:00-02:59 missing); back 2026-11-01 at 02:00 EDT (06:00Z, 01:00-01:59 twice).
* Europe/London: GMT +00:00 / BST +01:00. Forward 2026-03-29 at 01:00Z (01:00-01:59
  missing); back 2026-10-25 at 01:00Z (01:00-01:59 twice).
* Australia/Sydney: AEST +10:00 / AEDT +11:00. Back 2026-04-05 at 03:00 AEDT (04-04 16:00Z,
  02:00-02:59 twice); forward 2026-10-04 at 02:00 AEST (10-03 16:00Z, 02:00-02:59 missing).
* Australia/Lord_Howe: +10:30 / +11:00, a 30-minute shift. Back 2026-04-05 at 02:00 +11:00
  (04-04 15:00Z, 01:30-01:59 twice); forward 2026-10-04 at 02:00 +10:30 (10-03 15:30Z,
  02:00-02:29 missing).
* America/Santiago: -04:00 / -03:00, switching at midnight. Back 2026-04-05 at 00:00 -03:00
  (03:00Z; 2026-04-04 23:00-23:59 twice); forward 2026-09-06 at 00:00 -04:00 (04:00Z,
  00:00-00:59 missing).
"""

from __future__ import annotations

import functools
import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from bulletin.scheduling.rules import (
    CronRule,
    FireTime,
    OneOffRule,
    ScheduleError,
    fire_times,
    local_choices,
    next_fire_after,
    parse_zone,
    resolve_local,
)

NY = "America/New_York"
LONDON = "Europe/London"
SYDNEY = "Australia/Sydney"
LORD_HOWE = "Australia/Lord_Howe"
SANTIAGO = "America/Santiago"
ZONES = [NY, LONDON, SYDNEY, LORD_HOWE, SANTIAGO]

# Local dates on which each zone's clocks change in 2026: the only days a note may appear.
TRANSITION_DATES_2026 = {
    NY: {date(2026, 3, 8), date(2026, 11, 1)},
    LONDON: {date(2026, 3, 29), date(2026, 10, 25)},
    SYDNEY: {date(2026, 4, 5), date(2026, 10, 4)},
    LORD_HOWE: {date(2026, 4, 5), date(2026, 10, 4)},
    # The repeated hour is the evening before the switch at midnight.
    SANTIAGO: {date(2026, 4, 4), date(2026, 9, 6)},
}

N = False  # no note
Y = True  # a DST note


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(zone: str, text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))


def rendered(fire: FireTime) -> tuple[str, str, bool]:
    """A fire as (UTC instant, local time with offset, has a note) for readable tables."""
    return (
        fire.utc.strftime("%Y-%m-%d %H:%MZ"),
        fire.local.isoformat(sep=" ", timespec="minutes"),
        fire.note is not None,
    )


def first_fires(expr: str, zone: str, after_local: str, count: int) -> list[tuple[str, str, bool]]:
    fires = fire_times(CronRule(expr), ZoneInfo(zone), local(zone, after_local), limit=count)
    return [rendered(fire) for fire in fires]


def case(
    id: str, expr: str, zone: str, after: str, *expected: tuple[str, str, bool]
) -> pytest.ParameterSet:
    return pytest.param(expr, zone, after, list(expected), id=id)


# --- Spring forward: a missing local time fires once, at the first valid minute after the gap.

GAP_CASES = [
    case(
        "new_york-2027-03-14-daily-02:30",
        "30 2 * * *",
        NY,
        "2027-03-13 00:00",
        ("2027-03-13 07:30Z", "2027-03-13 02:30-05:00", N),
        ("2027-03-14 07:00Z", "2027-03-14 03:00-04:00", Y),
        ("2027-03-15 06:30Z", "2027-03-15 02:30-04:00", N),
    ),
    case(
        "new_york-2026-03-08-daily-02:00",
        "0 2 * * *",
        NY,
        "2026-03-07 00:00",
        ("2026-03-07 07:00Z", "2026-03-07 02:00-05:00", N),
        ("2026-03-08 07:00Z", "2026-03-08 03:00-04:00", Y),
        ("2026-03-09 06:00Z", "2026-03-09 02:00-04:00", N),
    ),
    case(
        "new_york-2027-03-14-two-gap-times-fire-once",
        "0,30 2 * * *",
        NY,
        "2027-03-14 00:00",
        ("2027-03-14 07:00Z", "2027-03-14 03:00-04:00", Y),
        ("2027-03-15 06:00Z", "2027-03-15 02:00-04:00", N),
    ),
    case(
        "london-2026-03-29-daily-01:30",
        "30 1 * * *",
        LONDON,
        "2026-03-28 00:00",
        ("2026-03-28 01:30Z", "2026-03-28 01:30+00:00", N),
        ("2026-03-29 01:00Z", "2026-03-29 02:00+01:00", Y),
        ("2026-03-30 00:30Z", "2026-03-30 01:30+01:00", N),
    ),
    case(
        "sydney-2026-10-04-daily-02:30",
        "30 2 * * *",
        SYDNEY,
        "2026-10-03 00:00",
        ("2026-10-02 16:30Z", "2026-10-03 02:30+10:00", N),
        ("2026-10-03 16:00Z", "2026-10-04 03:00+11:00", Y),
        ("2026-10-04 15:30Z", "2026-10-05 02:30+11:00", N),
    ),
    case(
        "lord_howe-2026-10-04-daily-02:15",
        "15 2 * * *",
        LORD_HOWE,
        "2026-10-03 00:00",
        ("2026-10-02 15:45Z", "2026-10-03 02:15+10:30", N),
        ("2026-10-03 15:30Z", "2026-10-04 02:30+11:00", Y),
        ("2026-10-04 15:15Z", "2026-10-05 02:15+11:00", N),
    ),
    case(
        "santiago-2026-09-06-daily-midnight",
        "0 0 * * *",
        SANTIAGO,
        "2026-09-04 12:00",
        ("2026-09-05 04:00Z", "2026-09-05 00:00-04:00", N),
        ("2026-09-06 04:00Z", "2026-09-06 01:00-03:00", Y),
        ("2026-09-07 03:00Z", "2026-09-07 00:00-03:00", N),
    ),
    case(
        "santiago-2026-09-06-daily-00:30-fires-at-01:00-not-01:30",
        "30 0 * * *",
        SANTIAGO,
        "2026-09-04 12:00",
        ("2026-09-05 04:30Z", "2026-09-05 00:30-04:00", N),
        ("2026-09-06 04:00Z", "2026-09-06 01:00-03:00", Y),
        ("2026-09-07 03:30Z", "2026-09-07 00:30-03:00", N),
    ),
]


# --- Spring forward, wildcard schedules (minute or hour field starting with "*"): as Debian
# cron, they follow real elapsed time: the wall times the gap took are gone, with no catch-up.
# The first fire after the gap says so (Y). Their fall-back pairs are in ELAPSED_CASES.

WILDCARD_GAP_CASES = [
    case(
        "new_york-2024-03-10-hourly-at-15-skips-02:15-no-03:00-catch-up",
        "15 * * * *",
        NY,
        "2024-03-10 00:30",
        ("2024-03-10 06:15Z", "2024-03-10 01:15-05:00", N),
        ("2024-03-10 07:15Z", "2024-03-10 03:15-04:00", Y),
        ("2024-03-10 08:15Z", "2024-03-10 04:15-04:00", N),
    ),
    case(
        "new_york-2027-03-14-every-15-min-of-hour-2-skips-the-day",
        "*/15 2 * * *",
        NY,
        "2027-03-13 03:00",
        ("2027-03-15 06:00Z", "2027-03-15 02:00-04:00", Y),
        ("2027-03-15 06:15Z", "2027-03-15 02:15-04:00", N),
    ),
    case(
        "new_york-2027-03-14-every-2-hours-skips-02:00",
        "0 */2 * * *",
        NY,
        "2027-03-13 23:00",
        ("2027-03-14 05:00Z", "2027-03-14 00:00-05:00", N),
        ("2027-03-14 08:00Z", "2027-03-14 04:00-04:00", Y),
        ("2027-03-14 10:00Z", "2027-03-14 06:00-04:00", N),
    ),
    case(
        "london-2026-03-29-hourly-at-15-skips-01:15",
        "15 * * * *",
        LONDON,
        "2026-03-29 00:00",
        ("2026-03-29 00:15Z", "2026-03-29 00:15+00:00", N),
        ("2026-03-29 01:15Z", "2026-03-29 02:15+01:00", Y),
    ),
    case(
        "chatham-2026-09-27-every-30-min-skips-03:00-and-03:30",
        "*/30 * * * *",
        "Pacific/Chatham",
        "2026-09-27 02:00",
        ("2026-09-26 13:45Z", "2026-09-27 02:30+12:45", N),
        ("2026-09-26 14:15Z", "2026-09-27 04:00+13:45", Y),
    ),
    case(
        "lord_howe-2026-10-04-hourly-skips-02:00",
        "0 * * * *",
        LORD_HOWE,
        "2026-10-04 00:30",
        ("2026-10-03 14:30Z", "2026-10-04 01:00+10:30", N),
        ("2026-10-03 16:00Z", "2026-10-04 03:00+11:00", Y),
    ),
]


@pytest.mark.parametrize(("expr", "zone", "after", "expected"), WILDCARD_GAP_CASES)
def test_a_wildcard_schedule_skips_the_wall_times_a_gap_took(
    expr: str, zone: str, after: str, expected: list[tuple[str, str, bool]]
) -> None:
    assert first_fires(expr, zone, after, len(expected)) == expected


def test_the_first_fire_after_a_gap_says_which_times_were_skipped() -> None:
    after = local(NY, "2024-03-10 00:30")
    fires = list(fire_times(CronRule("15 * * * *"), ZoneInfo(NY), after, limit=3))
    assert fires[1].note == (
        "02:15 does not exist on 10 Mar 2024 (clocks jump forward): this schedule skips it"
    )
    quarter = list(
        fire_times(CronRule("*/15 2 * * *"), ZoneInfo(NY), local(NY, "2027-03-13 03:00"), limit=1)
    )
    assert quarter[0].note == (
        "02:00 to 02:45 do not exist on 14 Mar 2027 (clocks jump forward): this schedule skips them"
    )


@pytest.mark.parametrize(("expr", "zone", "after", "expected"), GAP_CASES)
def test_gap_time_fires_once_after_the_gap(
    expr: str, zone: str, after: str, expected: list[tuple[str, str, bool]]
) -> None:
    assert first_fires(expr, zone, after, len(expected)) == expected


# --- Fall back: a fixed-time schedule fires once, at the first copy (fold=0), with a note.

FOLD_FIXED_CASES = [
    case(
        "new_york-2026-11-01-daily-01:30",
        "30 1 * * *",
        NY,
        "2026-10-31 00:00",
        ("2026-10-31 05:30Z", "2026-10-31 01:30-04:00", N),
        ("2026-11-01 05:30Z", "2026-11-01 01:30-04:00", Y),
        ("2026-11-02 06:30Z", "2026-11-02 01:30-05:00", N),
    ),
    case(
        "london-2026-10-25-daily-01:30",
        "30 1 * * *",
        LONDON,
        "2026-10-24 00:00",
        ("2026-10-24 00:30Z", "2026-10-24 01:30+01:00", N),
        ("2026-10-25 00:30Z", "2026-10-25 01:30+01:00", Y),
        ("2026-10-26 01:30Z", "2026-10-26 01:30+00:00", N),
    ),
    case(
        "sydney-2026-04-05-daily-02:30",
        "30 2 * * *",
        SYDNEY,
        "2026-04-04 00:00",
        ("2026-04-03 15:30Z", "2026-04-04 02:30+11:00", N),
        ("2026-04-04 15:30Z", "2026-04-05 02:30+11:00", Y),
        ("2026-04-05 16:30Z", "2026-04-06 02:30+10:00", N),
    ),
    case(
        "lord_howe-2026-04-05-daily-01:45",
        "45 1 * * *",
        LORD_HOWE,
        "2026-04-04 00:00",
        ("2026-04-03 14:45Z", "2026-04-04 01:45+11:00", N),
        ("2026-04-04 14:45Z", "2026-04-05 01:45+11:00", Y),
        ("2026-04-05 15:15Z", "2026-04-06 01:45+10:30", N),
    ),
    case(
        "santiago-2026-04-04-daily-23:30",
        "30 23 * * *",
        SANTIAGO,
        "2026-04-03 12:00",
        ("2026-04-04 02:30Z", "2026-04-03 23:30-03:00", N),
        ("2026-04-05 02:30Z", "2026-04-04 23:30-03:00", Y),
        ("2026-04-06 03:30Z", "2026-04-05 23:30-04:00", N),
    ),
    case(
        "new_york-2026-11-01-every-30-min-of-hour-1-listed-explicitly",
        "0,30 1 * * *",
        NY,
        "2026-11-01 00:00",
        ("2026-11-01 05:00Z", "2026-11-01 01:00-04:00", Y),
        ("2026-11-01 05:30Z", "2026-11-01 01:30-04:00", Y),
        ("2026-11-02 06:00Z", "2026-11-02 01:00-05:00", N),
    ),
]


@pytest.mark.parametrize(("expr", "zone", "after", "expected"), FOLD_FIXED_CASES)
def test_fixed_time_in_repeated_hour_fires_once_at_the_first(
    expr: str, zone: str, after: str, expected: list[tuple[str, str, bool]]
) -> None:
    assert first_fires(expr, zone, after, len(expected)) == expected


# --- Wildcard schedules follow real elapsed time: both copies of a repeated hour, and no
# --- catch-up after a gap (the first fire after it notes what the gap took).

ELAPSED_CASES = [
    case(
        "new_york-2026-11-01-back-every-30-min",
        "*/30 * * * *",
        NY,
        "2026-11-01 00:15",
        ("2026-11-01 04:30Z", "2026-11-01 00:30-04:00", N),
        ("2026-11-01 05:00Z", "2026-11-01 01:00-04:00", N),
        ("2026-11-01 05:30Z", "2026-11-01 01:30-04:00", N),
        ("2026-11-01 06:00Z", "2026-11-01 01:00-05:00", Y),
        ("2026-11-01 06:30Z", "2026-11-01 01:30-05:00", Y),
        ("2026-11-01 07:00Z", "2026-11-01 02:00-05:00", N),
    ),
    case(
        "new_york-2027-03-14-forward-every-30-min",
        "*/30 * * * *",
        NY,
        "2027-03-14 01:15",
        ("2027-03-14 06:30Z", "2027-03-14 01:30-05:00", N),
        ("2027-03-14 07:00Z", "2027-03-14 03:00-04:00", Y),
        ("2027-03-14 07:30Z", "2027-03-14 03:30-04:00", N),
    ),
    case(
        "london-2026-10-25-back-hourly",
        "0 * * * *",
        LONDON,
        "2026-10-25 00:30",
        ("2026-10-25 00:00Z", "2026-10-25 01:00+01:00", N),
        ("2026-10-25 01:00Z", "2026-10-25 01:00+00:00", Y),
        ("2026-10-25 02:00Z", "2026-10-25 02:00+00:00", N),
    ),
    case(
        "london-2026-03-29-forward-hourly",
        "0 * * * *",
        LONDON,
        "2026-03-29 00:30",
        ("2026-03-29 01:00Z", "2026-03-29 02:00+01:00", Y),
        ("2026-03-29 02:00Z", "2026-03-29 03:00+01:00", N),
    ),
    case(
        "sydney-2026-04-05-back-every-30-min",
        "*/30 * * * *",
        SYDNEY,
        "2026-04-05 01:45",
        ("2026-04-04 15:00Z", "2026-04-05 02:00+11:00", N),
        ("2026-04-04 15:30Z", "2026-04-05 02:30+11:00", N),
        ("2026-04-04 16:00Z", "2026-04-05 02:00+10:00", Y),
        ("2026-04-04 16:30Z", "2026-04-05 02:30+10:00", Y),
        ("2026-04-04 17:00Z", "2026-04-05 03:00+10:00", N),
    ),
    case(
        "sydney-2026-10-04-forward-every-30-min",
        "*/30 * * * *",
        SYDNEY,
        "2026-10-04 01:15",
        ("2026-10-03 15:30Z", "2026-10-04 01:30+10:00", N),
        ("2026-10-03 16:00Z", "2026-10-04 03:00+11:00", Y),
    ),
    case(
        "lord_howe-2026-04-05-back-every-30-min",
        "*/30 * * * *",
        LORD_HOWE,
        "2026-04-05 01:15",
        ("2026-04-04 14:30Z", "2026-04-05 01:30+11:00", N),
        ("2026-04-04 15:00Z", "2026-04-05 01:30+10:30", Y),
        ("2026-04-04 15:30Z", "2026-04-05 02:00+10:30", N),
    ),
    case(
        "lord_howe-2026-10-04-forward-every-30-min",
        "*/30 * * * *",
        LORD_HOWE,
        "2026-10-04 01:15",
        ("2026-10-03 15:00Z", "2026-10-04 01:30+10:30", N),
        ("2026-10-03 15:30Z", "2026-10-04 02:30+11:00", Y),
    ),
    case(
        "santiago-2026-04-04-back-every-30-min",
        "*/30 * * * *",
        SANTIAGO,
        "2026-04-04 22:45",
        ("2026-04-05 02:00Z", "2026-04-04 23:00-03:00", N),
        ("2026-04-05 02:30Z", "2026-04-04 23:30-03:00", N),
        ("2026-04-05 03:00Z", "2026-04-04 23:00-04:00", Y),
        ("2026-04-05 03:30Z", "2026-04-04 23:30-04:00", Y),
        ("2026-04-05 04:00Z", "2026-04-05 00:00-04:00", N),
    ),
    case(
        "santiago-2026-09-06-forward-hourly",
        "0 * * * *",
        SANTIAGO,
        "2026-09-05 22:30",
        ("2026-09-06 03:00Z", "2026-09-05 23:00-04:00", N),
        ("2026-09-06 04:00Z", "2026-09-06 01:00-03:00", Y),
        ("2026-09-06 05:00Z", "2026-09-06 02:00-03:00", N),
    ),
]


@pytest.mark.parametrize(("expr", "zone", "after", "expected"), ELAPSED_CASES)
def test_wildcard_schedule_follows_real_elapsed_time(
    expr: str, zone: str, after: str, expected: list[tuple[str, str, bool]]
) -> None:
    assert first_fires(expr, zone, after, len(expected)) == expected


# --- Times that exist once on a transition day are untouched (no note).

UNAFFECTED_CASES = [
    case(
        "lord_howe-2026-10-04-daily-02:30-exists",
        "30 2 * * *",
        LORD_HOWE,
        "2026-10-03 00:00",
        ("2026-10-02 16:00Z", "2026-10-03 02:30+10:30", N),
        ("2026-10-03 15:30Z", "2026-10-04 02:30+11:00", N),
        ("2026-10-04 15:30Z", "2026-10-05 02:30+11:00", N),
    ),
    case(
        "lord_howe-2026-04-05-daily-01:15-before-the-repeat",
        "15 1 * * *",
        LORD_HOWE,
        "2026-04-04 00:00",
        ("2026-04-03 14:15Z", "2026-04-04 01:15+11:00", N),
        ("2026-04-04 14:15Z", "2026-04-05 01:15+11:00", N),
        ("2026-04-05 14:45Z", "2026-04-06 01:15+10:30", N),
    ),
    # cronsim 2.8 alone skips the first two of these (its hourly steps misalign by 30 minutes).
    case(
        "lord_howe-2026-04-05-every-15-min-of-hour-2-after-the-repeat",
        "*/15 2 * * *",
        LORD_HOWE,
        "2026-04-05 00:00",
        ("2026-04-04 15:30Z", "2026-04-05 02:00+10:30", N),
        ("2026-04-04 15:45Z", "2026-04-05 02:15+10:30", N),
        ("2026-04-04 16:00Z", "2026-04-05 02:30+10:30", N),
        ("2026-04-04 16:15Z", "2026-04-05 02:45+10:30", N),
    ),
    case(
        "santiago-2026-04-05-daily-midnight-exists-once",
        "0 0 * * *",
        SANTIAGO,
        "2026-04-03 12:00",
        ("2026-04-04 03:00Z", "2026-04-04 00:00-03:00", N),
        ("2026-04-05 04:00Z", "2026-04-05 00:00-04:00", N),
        ("2026-04-06 04:00Z", "2026-04-06 00:00-04:00", N),
    ),
    case(
        "santiago-2026-04-05-daily-00:30-exists-once",
        "30 0 * * *",
        SANTIAGO,
        "2026-04-03 12:00",
        ("2026-04-04 03:30Z", "2026-04-04 00:30-03:00", N),
        ("2026-04-05 04:30Z", "2026-04-05 00:30-04:00", N),
        ("2026-04-06 04:30Z", "2026-04-06 00:30-04:00", N),
    ),
    case(
        "new_york-2026-11-01-daily-02:30-after-the-repeat",
        "30 2 * * *",
        NY,
        "2026-10-31 12:00",
        ("2026-11-01 07:30Z", "2026-11-01 02:30-05:00", N),
        ("2026-11-02 07:30Z", "2026-11-02 02:30-05:00", N),
    ),
]


@pytest.mark.parametrize(("expr", "zone", "after", "expected"), UNAFFECTED_CASES)
def test_time_that_exists_once_on_a_transition_day_fires_normally(
    expr: str, zone: str, after: str, expected: list[tuple[str, str, bool]]
) -> None:
    assert first_fires(expr, zone, after, len(expected)) == expected


# --- Note wording: one line a person can read.


def test_gap_note_names_the_missing_time_and_the_time_it_fires() -> None:
    fire = next(fire_times(CronRule("30 2 * * *"), ZoneInfo(NY), local(NY, "2027-03-14 00:00")))
    assert fire.note is not None
    assert "02:30 does not exist on 14 Mar 2027" in fire.note
    assert "fires at 03:00" in fire.note


def test_fold_note_for_fixed_time_says_it_fires_once_at_the_first() -> None:
    fire = next(fire_times(CronRule("30 1 * * *"), ZoneInfo(NY), local(NY, "2026-11-01 00:00")))
    assert fire.note is not None
    assert "01:30 occurs twice on 1 Nov 2026" in fire.note
    assert "once, at the first (EDT)" in fire.note


def test_fold_note_for_wildcard_marks_the_second_copy() -> None:
    after = utc("2026-11-01 05:45")  # between 01:30 EDT and 01:00 EST
    fire = next(fire_times(CronRule("*/30 * * * *"), ZoneInfo(NY), after))
    assert fire.note is not None
    assert "01:00 occurs twice on 1 Nov 2026" in fire.note
    assert "second (EST)" in fire.note


def test_note_shows_numeric_offset_where_the_zone_has_no_abbreviation() -> None:
    fire = next(
        fire_times(
            CronRule("45 1 * * *"), ZoneInfo(LORD_HOWE), local(LORD_HOWE, "2026-04-05 00:00")
        )
    )
    assert fire.note is not None
    assert "(+11:00)" in fire.note


# --- A full year: ascending, no duplicates, notes only on transition days.

YEAR_EXPRS = ["*/30 * * * *", "0 2 * * *", "0 * * * *", "30 1 * * *", "*/15 1-3 * * *", "0 0 * * *"]


@functools.cache
def year_of_fires(expr: str, zone: str) -> tuple[FireTime, ...]:
    """All of 2026 in the zone's local calendar (cached: several tests read the same year)."""
    start = local(zone, "2026-01-01 00:00") - timedelta(seconds=1)
    end = local(zone, "2026-12-31 23:59")
    return tuple(fire_times(CronRule(expr), ZoneInfo(zone), start, until=end, limit=100_000))


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("expr", YEAR_EXPRS)
def test_fires_over_a_year_strictly_increase_with_notes_only_on_transition_days(
    expr: str, zone: str
) -> None:
    fires = year_of_fires(expr, zone)
    instants = [fire.utc for fire in fires]
    assert instants == sorted(set(instants))
    noted_days = {fire.local.date() for fire in fires if fire.note}
    assert noted_days <= TRANSITION_DATES_2026[zone]


@pytest.mark.parametrize("zone", ZONES)
def test_every_30_minutes_is_exactly_30_minutes_of_real_time_all_year(zone: str) -> None:
    # All five zones' offsets are whole half-hours, so :00/:30 local is a 30-minute UTC grid.
    fires = year_of_fires("*/30 * * * *", zone)
    gaps = {later.utc - earlier.utc for earlier, later in itertools.pairwise(fires)}
    assert gaps == {timedelta(minutes=30)}


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(
    "expr", ["0 2 * * *", "30 1 * * *", "30 2 * * *", "0 0 * * *", "30 23 * * *"]
)
def test_fixed_time_daily_rule_fires_exactly_once_per_local_date(expr: str, zone: str) -> None:
    days = [fire.local.date() for fire in year_of_fires(expr, zone)]
    assert days == [date(2026, 1, 1) + timedelta(days=n) for n in range(365)]


# --- Cross-check against cronsim's own aware-datetime mode (not the code under test), over
# --- four days around each 2026 transition of each zone.


def around(zone: str, day: date) -> tuple[datetime, datetime]:
    middle = datetime.combine(day, datetime.min.time()).replace(tzinfo=ZoneInfo(zone))
    return middle - timedelta(days=2), middle + timedelta(days=2)


def our_instants(expr: str, zone: str) -> dict[datetime, FireTime]:
    found = {}
    for day in TRANSITION_DATES_2026[zone]:
        start, end = around(zone, day)
        fires = fire_times(CronRule(expr), ZoneInfo(zone), start, until=end, limit=10_000)
        found.update({fire.utc: fire for fire in fires})
    return found


def cronsim_instants(expr: str, zone: str) -> set[datetime]:
    found = set()
    for day in TRANSITION_DATES_2026[zone]:
        start, end = around(zone, day)
        for moment in CronSim(expr, start):
            if moment.astimezone(UTC) > end:
                break
            found.add(moment.astimezone(UTC))
    return found


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("expr", ["0 2 * * *", "30 1 * * *", "0,30 0-3 * * *", "30 23 * * *"])
def test_fixed_time_rules_match_cronsim_exactly(expr: str, zone: str) -> None:
    assert set(our_instants(expr, zone)) == cronsim_instants(expr, zone)


# Fires rules.py adds that cronsim 2.8 drops for wildcard schedules, worked out by hand: Lord
# Howe's 02:00/02:15 (+10:30) on 2026-04-05, which exist once but which cronsim's hourly
# stepping skips after the 30-minute fall-back. In the gap both skip the lost wall times.
CRONSIM_CORRECTIONS = {
    ("*/15 2 * * *", LORD_HOWE): {"2026-04-04 15:30", "2026-04-04 15:45"},
    ("0 */2 * * *", LORD_HOWE): {"2026-04-04 15:30"},
}


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("expr", ["*/30 * * * *", "0 * * * *", "*/15 2 * * *", "0 */2 * * *"])
def test_wildcard_rules_match_cronsim_except_for_the_documented_corrections(
    expr: str, zone: str
) -> None:
    ours, theirs = our_instants(expr, zone), cronsim_instants(expr, zone)
    assert theirs <= set(ours)
    added = {instant.strftime("%Y-%m-%d %H:%M") for instant in set(ours) - theirs}
    assert added == CRONSIM_CORRECTIONS.get((expr, zone), set())


# --- fire_times bounds: strictly after `after`, inclusive `until`, `limit`.


def test_fire_exactly_at_after_is_excluded() -> None:
    after = local(NY, "2026-06-01 09:00")
    fire = next(fire_times(CronRule("0 9 * * *"), ZoneInfo(NY), after))
    assert fire.utc == utc("2026-06-02 13:00")


def test_fire_exactly_at_until_is_included() -> None:
    fires = fire_times(
        CronRule("0 9 * * *"),
        ZoneInfo(NY),
        local(NY, "2026-06-01 00:00"),
        until=local(NY, "2026-06-03 09:00"),
    )
    assert [fire.utc for fire in fires] == [
        utc("2026-06-01 13:00"),
        utc("2026-06-02 13:00"),
        utc("2026-06-03 13:00"),
    ]


@pytest.mark.parametrize(("limit", "count"), [(3, 3), (1, 1), (0, 0), (-1, 0)])
def test_limit_caps_the_number_of_fires(limit: int, count: int) -> None:
    fires = fire_times(CronRule("* * * * *"), ZoneInfo(NY), utc("2026-06-01 00:00"), limit=limit)
    assert len(list(fires)) == count


def test_default_limit_is_1000() -> None:
    fires = fire_times(CronRule("* * * * *"), ZoneInfo(NY), utc("2026-06-01 00:00"))
    assert len(list(fires)) == 1000


def test_after_may_be_given_in_any_zone() -> None:
    after = datetime(2026, 6, 1, 22, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 13:00Z = 09:00 EDT
    assert next_fire_after(CronRule("0 9 * * *"), ZoneInfo(NY), after) == utc("2026-06-02 13:00")


def test_fire_times_are_utc_and_local_is_in_the_zone() -> None:
    fire = next(fire_times(CronRule("0 9 * * *"), ZoneInfo(NY), utc("2026-06-01 00:00")))
    assert fire.utc.tzinfo is UTC
    assert fire.local.tzinfo == ZoneInfo(NY)
    assert (fire.local.hour, fire.local.minute) == (9, 0)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        pytest.param(
            "2026-11-01 05:45", "2026-11-01 06:00", id="after-01:45-EDT-next-is-01:00-EST"
        ),
        pytest.param(
            "2026-11-01 06:15", "2026-11-01 06:30", id="after-01:15-EST-next-is-01:30-EST"
        ),
    ],
)
def test_starting_inside_the_repeated_hour_misses_no_second_copy(after: str, expected: str) -> None:
    assert next_fire_after(CronRule("*/30 * * * *"), ZoneInfo(NY), utc(after)) == utc(expected)


def test_fixed_time_started_inside_the_repeated_hour_does_not_fire_again() -> None:
    after = utc("2026-11-01 06:15")  # 01:15 EST, after the 01:30 EDT fire happened
    assert next_fire_after(CronRule("30 1 * * *"), ZoneInfo(NY), after) == utc("2026-11-02 06:30")


def test_naive_after_or_until_is_refused() -> None:
    with pytest.raises(ValueError, match="after"):
        fire_times(CronRule("0 9 * * *"), ZoneInfo(NY), datetime(2026, 6, 1))
    with pytest.raises(ValueError, match="until"):
        fire_times(
            CronRule("0 9 * * *"), ZoneInfo(NY), utc("2026-06-01 00:00"), until=datetime(2026, 7, 1)
        )


# --- One-off rules.

ONE_OFF = OneOffRule(datetime(2026, 7, 1, 9, 0))  # 13:00Z in New York


@pytest.mark.parametrize(
    ("after", "until", "expected"),
    [
        pytest.param("2026-07-01 12:59", None, ["2026-07-01 13:00Z"], id="after-is-before"),
        pytest.param("2026-07-01 13:00", None, [], id="after-is-the-instant"),
        pytest.param("2026-07-02 00:00", None, [], id="after-is-later"),
        pytest.param(
            "2026-06-01 00:00", "2026-07-01 13:00", ["2026-07-01 13:00Z"], id="until-is-it"
        ),
        pytest.param("2026-06-01 00:00", "2026-07-01 12:59", [], id="until-is-before"),
    ],
)
def test_one_off_fires_only_when_in_range(
    after: str, until: str | None, expected: list[str]
) -> None:
    fires = fire_times(ONE_OFF, ZoneInfo(NY), utc(after), until=utc(until) if until else None)
    assert [rendered(fire)[0] for fire in fires] == expected


def test_next_fire_after_a_past_one_off_is_none() -> None:
    assert next_fire_after(ONE_OFF, ZoneInfo(NY), utc("2026-08-01 00:00")) is None
    assert next_fire_after(ONE_OFF, ZoneInfo(NY), utc("2026-06-01 00:00")) == utc(
        "2026-07-01 13:00"
    )


def test_one_off_fire_has_no_note_and_shows_local_time() -> None:
    fire = next(fire_times(ONE_OFF, ZoneInfo(NY), utc("2026-06-01 00:00")))
    assert fire.note is None
    assert fire.local.isoformat(timespec="minutes") == "2026-07-01T09:00-04:00"


def test_one_off_in_a_gap_is_refused_not_guessed() -> None:
    rule = OneOffRule(datetime(2027, 3, 14, 2, 30))
    with pytest.raises(ScheduleError, match="does not exist"):
        fire_times(rule, ZoneInfo(NY), utc("2027-01-01 00:00"))


def test_one_off_with_a_time_zone_is_refused() -> None:
    with pytest.raises(ScheduleError, match="without a time zone"):
        OneOffRule(utc("2026-07-01 13:00"))


# --- resolve_local and local_choices.

GAP_ONE_OFFS = [
    pytest.param(NY, "2027-03-14 02:30", "01:59 EST (-05:00)", "03:00 EDT (-04:00)", id="new_york"),
    pytest.param(
        LONDON, "2026-03-29 01:30", "00:59 GMT (+00:00)", "02:00 BST (+01:00)", id="london"
    ),
    pytest.param(
        SYDNEY, "2026-10-04 02:30", "01:59 AEST (+10:00)", "03:00 AEDT (+11:00)", id="sydney"
    ),
    pytest.param(LORD_HOWE, "2026-10-04 02:15", "01:59 (+10:30)", "02:30 (+11:00)", id="lord_howe"),
    pytest.param(SANTIAGO, "2026-09-06 00:30", "23:59 (-04:00)", "01:00 (-03:00)", id="santiago"),
]


@pytest.mark.parametrize(("zone", "at", "before", "after"), GAP_ONE_OFFS)
def test_resolve_local_in_a_gap_names_both_choices(
    zone: str, at: str, before: str, after: str
) -> None:
    with pytest.raises(ScheduleError) as caught:
        resolve_local(datetime.fromisoformat(at), ZoneInfo(zone))
    message = str(caught.value)
    assert f"{at} does not exist in {zone}" in message
    assert before in message
    assert after in message
    assert "\n" not in message


FOLD_ONE_OFFS = [
    pytest.param(NY, "2026-11-01 01:30", "01:30 EDT (-04:00)", "01:30 EST (-05:00)", id="new_york"),
    pytest.param(
        LONDON, "2026-10-25 01:30", "01:30 BST (+01:00)", "01:30 GMT (+00:00)", id="london"
    ),
    pytest.param(
        SYDNEY, "2026-04-05 02:30", "02:30 AEDT (+11:00)", "02:30 AEST (+10:00)", id="sydney"
    ),
    pytest.param(LORD_HOWE, "2026-04-05 01:45", "01:45 (+11:00)", "01:45 (+10:30)", id="lord_howe"),
    pytest.param(SANTIAGO, "2026-04-04 23:30", "23:30 (-03:00)", "23:30 (-04:00)", id="santiago"),
]


@pytest.mark.parametrize(("zone", "at", "first", "second"), FOLD_ONE_OFFS)
def test_resolve_local_in_a_repeated_hour_names_both_choices(
    zone: str, at: str, first: str, second: str
) -> None:
    with pytest.raises(ScheduleError) as caught:
        resolve_local(datetime.fromisoformat(at), ZoneInfo(zone))
    message = str(caught.value)
    assert f"{at} occurs twice in {zone}" in message
    assert message.index(first) < message.index(second)


@pytest.mark.parametrize(
    ("zone", "at", "expected"),
    [
        pytest.param(NY, "2026-07-01 09:00", ["2026-07-01 13:00"], id="new_york-normal"),
        pytest.param(
            NY, "2026-11-01 01:30", ["2026-11-01 05:30", "2026-11-01 06:30"], id="ny-fold"
        ),
        pytest.param(NY, "2027-03-14 02:30", ["2027-03-14 06:59", "2027-03-14 07:00"], id="ny-gap"),
        pytest.param(
            LORD_HOWE,
            "2026-10-04 02:00",
            ["2026-10-03 15:29", "2026-10-03 15:30"],
            id="lord_howe-gap",
        ),
        pytest.param(
            SANTIAGO,
            "2026-09-06 00:00",
            ["2026-09-06 03:59", "2026-09-06 04:00"],
            id="santiago-gap",
        ),
    ],
)
def test_local_choices_are_the_instants_an_admin_could_mean(
    zone: str, at: str, expected: list[str]
) -> None:
    assert local_choices(datetime.fromisoformat(at), ZoneInfo(zone)) == tuple(map(utc, expected))


def test_resolve_local_returns_aware_utc_for_an_ordinary_time() -> None:
    resolved = resolve_local(datetime(2026, 1, 15, 9, 0), ZoneInfo(LONDON))
    assert resolved == utc("2026-01-15 09:00")
    assert resolved.tzinfo is UTC


def test_resolve_local_refuses_an_aware_time() -> None:
    with pytest.raises(ScheduleError):
        resolve_local(utc("2026-01-15 09:00"), ZoneInfo(LONDON))


# --- parse_zone and CronRule validation.


@pytest.mark.parametrize(
    "name", ["Mars/Base", "", "../etc/passwd", "/etc/localtime", "America", "localtime"]
)
def test_unknown_zone_is_refused_with_its_name(name: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_zone(name)
    assert str(caught.value) == f"unknown time zone '{name}'"


def test_known_zone_is_returned() -> None:
    assert parse_zone(LORD_HOWE) == ZoneInfo(LORD_HOWE)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("61 * * * *", "invalid cron expression '61 * * * *': bad minute"),
        ("0 24 * * *", "invalid cron expression '0 24 * * *': bad hour"),
        ("* * *", "invalid cron expression '* * *': expected 5 fields"),
        ("hello", "invalid cron expression 'hello': expected 5 fields"),
        ("", "invalid cron expression '': expected 5 fields"),
        ("0 0 9 * * *", "invalid cron expression '0 0 9 * * *': expected 5 fields"),
        ("@daily", "invalid cron expression '@daily': @-shortcuts are not supported"),
        ("@reboot", "invalid cron expression '@reboot': @-shortcuts are not supported"),
        ("0 0 31 2 *", "invalid cron expression '0 0 31 2 *': bad day-of-month"),
    ],
)
def test_invalid_cron_expression_is_refused_with_a_reason(expr: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        CronRule(expr)
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, ValueError)


def test_cron_whitespace_is_normalised() -> None:
    assert CronRule("  0   9 *\t* 1-5 ").expr == "0 9 * * 1-5"


@pytest.mark.parametrize(
    ("expr", "fixed"),
    [
        ("30 1 * * *", True),
        ("0,30 1-3 * * *", True),
        ("*/15 * * * *", False),
        ("0 * * * *", False),
        ("*/15 2 * * *", False),
        ("0 */2 * * *", False),
    ],
)
def test_fixed_time_means_minute_and_hour_are_both_explicit(expr: str, fixed: bool) -> None:
    assert CronRule(expr).fixed_time is fixed
