"""Properties of the working-window policy over generated people and instants, clock changes
included (Santiago's clocks change at midnight, Lord Howe's by half an hour): a held delivery
goes at a moment inside a window, that window's first moment, and no window opened between."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bulletin.scheduling.rules import local_choices
from bulletin.scheduling.working import Availability, Region, WorkingWeek, hold_for

ZONES = (
    "Europe/London",
    "America/New_York",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "UTC",
)
REGIONS = (None, Region("GB", "ENG"), Region("US", "NY"), Region("CL"), Region("IN", "MH"))


@st.composite
def weeks(draw: st.DrawFn) -> WorkingWeek:
    days = draw(st.frozensets(st.integers(0, 6), min_size=1))
    start = draw(st.integers(0, 23 * 60 + 58))
    end = draw(st.integers(start + 1, 23 * 60 + 59))
    return WorkingWeek(days, time(start // 60, start % 60), time(end // 60, end % 60))


@st.composite
def people(draw: st.DrawFn) -> Availability:
    zone = zoneinfo.ZoneInfo(draw(st.sampled_from(ZONES)))
    away = draw(st.none() | st.dates(date(2024, 1, 1), date(2025, 12, 31)))
    return Availability(zone, draw(weeks()), draw(st.sampled_from(REGIONS)), away)


instants = st.datetimes(datetime(2024, 1, 1), datetime(2025, 12, 31)).map(
    lambda moment: moment.replace(second=0, microsecond=0, tzinfo=UTC)
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(due=instants, who=people())
def test_a_held_delivery_goes_at_the_first_moment_of_the_next_window(
    due: datetime, who: Availability
) -> None:
    hold = hold_for(due, who)
    if hold is None:
        return
    assert hold.until > due and hold.reason
    assert hold_for(hold.until, who) is None, "it goes inside a window"
    assert hold_for(hold.until - timedelta(minutes=1), who) is not None, "at the window's start"
    middle = due + (hold.until - due) / 2
    assert hold_for(middle.replace(second=0, microsecond=0), who) is not None, "none opened before"


def _skipped(wall: datetime, who: Availability) -> bool:
    """Whether the naive ``wall`` time does not exist in the person's zone (a spring gap)."""
    shown = wall.replace(tzinfo=who.zone).astimezone(UTC).astimezone(who.zone)
    return shown.replace(tzinfo=None) != wall


@settings(max_examples=300, deadline=None, derandomize=True)
@given(due=instants, who=people())
def test_a_delivery_goes_at_once_only_on_a_working_day_within_its_hours(
    due: datetime, who: Availability
) -> None:
    local = due.astimezone(who.zone)
    day = local.date()
    open_day = (
        day.weekday() in who.week.days
        and (who.region is None or who.region.holiday(day) is None)
        and (who.away_until is None or day > who.away_until)
    )
    inside = who.week.start <= local.time() < who.week.end
    if len(local_choices(local.replace(tzinfo=None), who.zone)) > 1:
        return  # a repeated wall time: the window is the first copy's (see the policy)
    if hold_for(due, who) is None:
        assert open_day, f"{local} is not a working day for {who}"
        # Outside the wall-clock hours only when the day's end falls in a spring gap, which
        # closes the window at the first minute after it (the fixed-time policy).
        assert inside or _skipped(datetime.combine(day, who.week.end), who), local
    elif open_day and inside:
        raise AssertionError(f"{local} is inside {who.week} but was held")
