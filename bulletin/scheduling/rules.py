"""Schedule rules and the one statement of Bulletin's time/DST policy.

Time policy
-----------
* Schedules are wall-clock rules in a named IANA zone: a one-off ``at`` local date-time, or a
  standard 5-field cron expression matched by ``cronsim`` with Debian cron's DST behaviour.
* Inside, only aware UTC instants are stored and compared. An occurrence is identified by
  (announcement, zone, UTC fire instant), never by when a tick happened to run.
* Debian cron splits schedules in two, in both directions of a clock change (cron.c's main
  loop; cronsim follows it): **fixed-time** schedules (minute and hour fields both explicit,
  e.g. ``30 2 * * *``) and **wildcard** schedules (minute or hour field starting with ``*``,
  e.g. ``15 * * * *``, ``*/30 * * * *``, ``*/15 2 * * *``, ``0 */2 * * *``).
* Spring-forward gap: a fixed-time schedule whose local time does not exist fires once, at
  the first valid minute after the gap. Several gap times on one day collapse into that single
  fire, and nothing extra fires if the schedule matches that minute anyway. A wildcard schedule
  follows real elapsed time: the wall times the gap skipped are gone and do not fire (an hourly
  ``15 * * * *`` fires at 01:15 and 03:15 on the day clocks jump from 02:00 to 03:00, with no
  03:00 catch-up beside 03:15).
* Fall-back repeated hour: a fixed-time schedule fires once, at the first occurrence
  (``fold=0``). A wildcard schedule follows real elapsed time, so it fires in both copies of
  the repeated hour.
* A one-off time that does not exist (gap) or is ambiguous (fold) is rejected with an error
  naming both choices; it is never guessed.

How it is computed
------------------
cronsim enumerates matching *naive* wall-clock times; this module maps each one to the instants
at which that wall time is shown in the zone (none in a gap, one normally, two in a fold) and
applies the policy above. cronsim 2.8's own aware mode agrees in the gap (checked against it
in the tests), but for wildcard schedules it
  - after Lord Howe's 30-minute fall-back, steps by whole hours from a misaligned minute and
    skips 02:00 and 02:15 (+10:30), which exist only once (``*/15 2 * * *``, ``0 */2 * * *``);
  - can label a fire with a non-existent local time (``00:00 -04`` in Santiago's midnight gap).
Mapping the wall times here corrects both with one code path. Separately, cronsim 2.8
reads a stepped range of one value (``0-0/5``) as "from 0, every 5"; ``_matcher`` hands it the
single value that cron means.
"""

from __future__ import annotations

import heapq
import itertools
import re
import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

from cronsim import CronSim, CronSimError

__all__ = [
    "CronRule",
    "FireTime",
    "OneOffRule",
    "Rule",
    "ScheduleError",
    "fire_times",
    "local_choices",
    "next_fire_after",
    "parse_zone",
    "resolve_local",
    "resolve_one_off",
]

_MINUTE = timedelta(minutes=1)
# Spelled out so notes do not depend on the process locale (%b does).
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_FIELDS = "minute hour day-of-month month day-of-week"


class ScheduleError(ValueError):
    """A schedule that cannot be accepted; str(e) is one user-facing line."""


def parse_zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone called `name`, or ScheduleError."""
    # "localtime" resolves to the server's own zone: not a stable name to store.
    if not isinstance(name, str) or name == "localtime":
        raise ScheduleError(f"unknown time zone '{name}'")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ScheduleError(f"unknown time zone '{name}'") from exc


@dataclass(frozen=True)
class CronRule:
    """A standard 5-field cron expression, evaluated on the zone's wall clock."""

    expr: str

    def __post_init__(self) -> None:
        expr = " ".join(str(self.expr).split())
        object.__setattr__(self, "expr", expr)
        reason = _cron_problem(expr)
        if reason:
            raise ScheduleError(f"invalid cron expression '{expr}': {reason}")

    @property
    def fixed_time(self) -> bool:
        """True when it fires once in a repeated hour (Debian's and cronsim's test)."""
        minute, hour = self.expr.split()[:2]
        return not minute.startswith("*") and not hour.startswith("*")


def _cron_problem(expr: str) -> str | None:
    if expr.startswith("@"):
        return "@-shortcuts are not supported; write the 5 fields, e.g. '0 0 * * *'"
    # cronsim also accepts a 6-field form with seconds, which is not standard cron.
    if len(expr.split()) != 5:
        return f"expected 5 fields ({_FIELDS}), got {len(expr.split())}"
    # cronsim upper-cases before matching names, so a long s (U+017F) + "un" would pass for
    # SUN; cron is ASCII.
    if odd := next((char for char in expr if not char.isascii()), None):
        return f"'{odd}' is not allowed; cron uses ASCII characters only"
    for name, field in zip(_FIELDS.split(), expr.split(), strict=True):
        # int() refuses more than 4300 digits with a bare ValueError; no field needs 5.
        if run := _LONG_NUMBER.search(field):
            return f"bad {name} ({len(run.group())}-digit number)"
    try:
        next(_matcher(expr, datetime(2000, 1, 1)))
    except CronSimError as exc:
        reason = str(exc)  # e.g. "Bad minute"
        return reason[:1].lower() + reason[1:]
    except StopIteration:  # cronsim gives up after 50 years without a match
        return "it never matches"
    return None


_LONG_NUMBER = re.compile(r"[0-9]{5,}")
_NAMES = {
    3: ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
    4: ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"),
}


def _matcher(expr: str, start: datetime) -> CronSim:
    """cronsim over naive wall times from `start`, for a valid 5-field `expr`."""
    # cronsim 2.8 reads a stepped range of one value ("5-5/10") like "5/10" (5, 15, ... 55);
    # cron means just 5. Spell such ranges as that value before cronsim parses them.
    fields = (
        ",".join(_one_value_range(term, position) for term in field.split(","))
        for position, field in enumerate(expr.split())
    )
    return CronSim(" ".join(fields), start)


def _one_value_range(term: str, position: int) -> str:
    span, slash, step = term.partition("/")
    first, dash, last = span.partition("-")
    if not (slash and dash and step.isdigit() and int(step) > 0):
        return term
    value = _field_value(first, position)
    return first if value is not None and value == _field_value(last, position) else term


def _field_value(text: str, position: int) -> int | None:
    names = _NAMES.get(position, ())
    if text.upper() in names:
        return names.index(text.upper()) + (1 if position == 3 else 0)
    return int(text) if text.isdigit() else None


@dataclass(frozen=True)
class OneOffRule:
    """A single local wall-clock date-time (naive); the zone is supplied when resolving.

    ``strict`` one-offs refuse a gap or fold time. A one-off at each recipient's local time
    cannot ask the admin about every zone, so it is not strict: in a zone where the time falls
    in a gap or fold it follows the cron policy (first valid minute after; the first of two).
    ``fold`` is the admin's answer for a time that happens twice: 0 the first, 1 the second.
    """

    at: datetime
    strict: bool = True
    fold: int | None = None

    def __post_init__(self) -> None:
        _require_naive(self.at)


Rule: TypeAlias = CronRule | OneOffRule


@dataclass(frozen=True)
class FireTime:
    """One fire instant: `utc` is what is stored; `local` and `note` are for people."""

    utc: datetime
    local: datetime
    note: str | None = None


def _require_naive(at: object) -> None:
    if not isinstance(at, datetime) or at.tzinfo is not None:
        raise ScheduleError("a one-off time must be a local date and time without a time zone")


def _require_aware(moment: datetime, name: str) -> None:
    if moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def _occurrences(wall: datetime, zone: zoneinfo.ZoneInfo) -> tuple[datetime, ...]:
    """UTC instants at which the naive `wall` is shown in `zone`: 0 in a gap, 2 in a fold."""
    # zoneinfo invents an offset for any wall time, so keep only the readings that survive
    # the round trip back to the wall clock (naive equality ignores `fold`).
    found: list[datetime] = []
    for fold in (0, 1):
        utc = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if utc.astimezone(zone).replace(tzinfo=None) == wall and utc not in found:
            found.append(utc)
    return tuple(sorted(found))


def _nearest_existing(wall: datetime, zone: zoneinfo.ZoneInfo, step: timedelta) -> datetime:
    """UTC instant of the first whole minute from `wall`, walking by `step`, that exists."""
    minute = wall.replace(second=0, microsecond=0)
    while not (found := _occurrences(minute, zone)):
        minute += step
    return found[0] if step > timedelta(0) else found[-1]


def local_choices(at: datetime, zone: zoneinfo.ZoneInfo) -> tuple[datetime, ...]:
    """The UTC instants an admin could mean by naive `at`: 1 normally, 2 in a gap or fold.

    In a gap the two are the last minute before it and the first minute after it.
    """
    _require_naive(at)
    found = _occurrences(at, zone)
    if found:
        return found
    return (_nearest_existing(at, zone, -_MINUTE), _nearest_existing(at, zone, _MINUTE))


def resolve_local(at: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """The aware UTC instant of naive `at` in `zone`; ScheduleError if it is a gap or fold."""
    choices = local_choices(at, zone)
    if len(choices) == 1:
        return choices[0]
    if _occurrences(at, zone):
        problem = "occurs twice in {} (clocks go back)"
    else:
        problem = "does not exist in {} (clocks jump forward)"
    options = " or ".join(_choice_text(choice.astimezone(zone)) for choice in choices)
    raise ScheduleError(f"{_wall_text(at)} {problem.format(zone.key)}; choose {options}")


def _offset(local: datetime) -> timedelta:
    offset = local.utcoffset()
    assert offset is not None, "only aware datetimes reach here"
    return offset


def _offset_text(local: datetime) -> str:
    minutes = int(_offset(local).total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _abbrev(local: datetime) -> str:
    """EST, BST... or the numeric offset where tzdata has no letters (e.g. Lord Howe's +1030)."""
    name = local.tzname() or ""
    return name if name[:1].isalpha() else _offset_text(local)


def _wall_text(wall: datetime) -> str:
    return f"{wall:%Y-%m-%d %H:%M}" + (f":{wall:%S}" if wall.second else "")


def _choice_text(local: datetime) -> str:
    abbrev, offset = _abbrev(local), _offset_text(local)
    label = f"({offset})" if abbrev == offset else f"{abbrev} ({offset})"
    return f"{_wall_text(local.replace(tzinfo=None))} {label}"


def _day_text(day: datetime) -> str:
    return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"


def _gap_note(wall: datetime, fired: datetime) -> str:
    when = f"{fired:%H:%M}"
    if fired.date() != wall.date():
        when += f" on {_day_text(fired)}"
    return (
        f"{wall:%H:%M} does not exist on {_day_text(wall)} (clocks jump forward); fires at {when}"
    )


def _skip_note(skipped: list[datetime]) -> str:
    """For a wildcard schedule's first fire after a gap: the wall times the gap took."""
    first, last = skipped[0], skipped[-1]
    if first == last:
        missing = f"{first:%H:%M} does not exist"
    else:
        missing = f"{first:%H:%M} to {last:%H:%M} do not exist"
    return f"{missing} on {_day_text(first)} (clocks jump forward): this schedule skips " + (
        "it" if first == last else "them"
    )


def _noted(fire: FireTime, note: str) -> FireTime:
    return replace(fire, note=f"{note}; {fire.note}" if fire.note else note)


def _fold_note(wall: datetime, fired: datetime, fixed: bool) -> str:
    which = "fires once, at the first" if fixed else "this is the second"
    twice = f"{wall:%H:%M} occurs twice on {_day_text(wall)} (clocks go back)"
    return f"{twice}; {which} ({_abbrev(fired)})"


def _fire(utc: datetime, zone: zoneinfo.ZoneInfo, note: str | None = None) -> FireTime:
    return FireTime(utc=utc, local=utc.astimezone(zone), note=note)


def _fires_for_wall(wall: datetime, zone: zoneinfo.ZoneInfo, fixed: bool) -> list[FireTime]:
    """The policy for one matching wall time, as fires in ascending UTC order."""
    found = _occurrences(wall, zone)
    if not found and not fixed:
        return []  # a wildcard schedule follows elapsed time: a skipped wall time is gone
    if not found:
        moved = _nearest_existing(wall, zone, _MINUTE)
        return [_fire(moved, zone, _gap_note(wall, moved.astimezone(zone)))]
    if len(found) == 1:
        return [_fire(found[0], zone)]
    first, second = found
    if fixed:
        return [_fire(first, zone, _fold_note(wall, first.astimezone(zone), fixed))]
    return [
        _fire(first, zone),
        _fire(second, zone, _fold_note(wall, second.astimezone(zone), fixed)),
    ]


def _first_wall(after: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    """Naive wall time to start matching from so that no fire later than `after` is missed."""
    # If clocks go back within the next day, wall times up to that shift before `after` can
    # still happen again (their second copy), so start that much earlier and filter later.
    here = after.astimezone(zone)
    shift = _offset(here) - _offset((after + timedelta(days=1)).astimezone(zone))
    return here.replace(tzinfo=None) - max(shift, timedelta(0)) - _MINUTE


def _cron_fires(rule: CronRule, zone: zoneinfo.ZoneInfo, after: datetime) -> Iterator[FireTime]:
    """Ascending fires from a little before `after`; may repeat an instant (see _distinct)."""
    # Wall order is not UTC order inside a repeated hour (01:30 EDT is before 01:00 EST), so
    # hold fires in a heap until the next wall time's earliest instant passes them. That
    # earliest instant never decreases as the wall clock advances, so nothing is emitted early.
    fixed = rule.fixed_time
    pending: list[tuple[datetime, bool, int, FireTime]] = []
    order = itertools.count()
    skipped: list[datetime] = []  # a wildcard schedule's wall times lost in a gap
    for wall in _matcher(rule.expr, _first_wall(after, zone)):
        fires = _fires_for_wall(wall, zone, fixed)
        if not fires:
            skipped.append(wall)
            continue
        if skipped:  # the first fire after the gap says what it took
            fires[0], skipped = _noted(fires[0], _skip_note(skipped)), []
        while pending and pending[0][0] < fires[0].utc:
            yield heapq.heappop(pending)[-1]
        for fire in fires:
            # A plain fire sorts before a gap-moved one at the same instant, so it is kept.
            heapq.heappush(pending, (fire.utc, fire.note is not None, next(order), fire))
    while pending:
        yield heapq.heappop(pending)[-1]


def _distinct(fires: Iterable[FireTime]) -> Iterator[FireTime]:
    """Drop repeats of an instant (gap times moved onto a minute that also fires)."""
    last: datetime | None = None
    for fire in fires:
        if fire.utc != last:
            yield fire
        last = fire.utc


def resolve_one_off(rule: OneOffRule, zone: zoneinfo.ZoneInfo) -> datetime:
    """The UTC instant of a one-off: a fold needs the admin's ``fold`` choice, a gap is refused
    (the admin picks an existing minute instead) — unless the rule is not strict."""
    found = _occurrences(rule.at, zone)
    if len(found) == 2 and rule.fold in (0, 1):
        return found[rule.fold]
    if rule.strict:
        return resolve_local(rule.at, zone)
    return _fires_for_wall(rule.at, zone, fixed=True)[0].utc


def _one_off_fire(rule: OneOffRule, zone: zoneinfo.ZoneInfo) -> FireTime:
    if rule.strict or rule.fold is not None:
        return _fire(resolve_one_off(rule, zone), zone)
    return _fires_for_wall(rule.at, zone, fixed=True)[0]


def fire_times(
    rule: Rule,
    zone: zoneinfo.ZoneInfo,
    after: datetime,
    *,
    until: datetime | None = None,
    limit: int = 1000,
) -> Iterator[FireTime]:
    """Fire times strictly after `after`, up to and including `until`, at most `limit`.

    Ascending by `utc`, never two equal `utc` values. Raises ScheduleError at once for a
    one-off time that is a gap or fold in `zone`.
    """
    _require_aware(after, "after")
    if isinstance(rule, OneOffRule):
        fires: Iterator[FireTime] = iter([_one_off_fire(rule, zone)])
    else:
        fires = _distinct(_cron_fires(rule, zone, after))
    fires = (fire for fire in fires if fire.utc > after)
    if until is not None:
        _require_aware(until, "until")
        end = until
        fires = itertools.takewhile(lambda fire: fire.utc <= end, fires)
    return itertools.islice(fires, max(limit, 0))


def next_fire_after(rule: Rule, zone: zoneinfo.ZoneInfo, after: datetime) -> datetime | None:
    """The first fire instant (aware UTC) strictly after `after`, or None if there is none."""
    fire = next(fire_times(rule, zone, after, limit=1), None)
    return None if fire is None else fire.utc
