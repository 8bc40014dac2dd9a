"""The planner's arithmetic: which occurrences a tick must record, and where its cursor goes.

Pure: no clock, no database. The caller passes ``now`` and the stored cursor, so a clock that
jumps backwards (``now`` before the cursor) plans nothing, and two ticks that run at once plan
the same fire instants — the database's unique key on (announcement, zone, fire_at) makes the
second insert a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bulletin.scheduling.rules import Rule, fire_times, next_fire_after, parse_zone

# A per-recipient schedule may gain a zone when an employee joins; re-plan at least this often so
# a new zone's fire time is recorded within a minute of its arrival.
RECIPIENT_RECHECK = timedelta(minutes=1)
# The latest wall clock on Earth: once a one-off time has passed here, it has passed everywhere.
LAST_ZONE = "Etc/GMT+12"
# After long downtime a minutely schedule could owe thousands of missed rows; record them in
# slices so one tick stays bounded, and let the next tick carry on from the new cursor.
MAX_PER_TICK = 1000


@dataclass(frozen=True)
class PlannedOccurrence:
    zone: str
    fire_at: datetime
    missed: bool
    note: str


@dataclass(frozen=True)
class Plan:
    occurrences: tuple[PlannedOccurrence, ...]
    cursor: datetime
    next_fire_at: datetime | None


@dataclass(frozen=True)
class Schedule:
    rule: Rule
    zones: tuple[str, ...]
    per_recipient: bool = False
    grace: timedelta = timedelta(hours=1)
    send_late: bool = False


def plan(schedule: Schedule, cursor: datetime, now: datetime) -> Plan:
    """Occurrences with cursor < fire_at <= now, the new cursor, and the next time to look."""
    if now <= cursor:
        return Plan((), cursor, _next_fire(schedule, cursor, now))
    due = sorted(_due(schedule, cursor, now), key=lambda o: (o.fire_at, o.zone))
    if len(due) > MAX_PER_TICK:
        last = due[MAX_PER_TICK - 1].fire_at
        kept = tuple(o for o in due if o.fire_at <= last)
        return Plan(kept, last, now)
    return Plan(tuple(due), now, _next_fire(schedule, now, now))


def _due(schedule: Schedule, cursor: datetime, now: datetime) -> Iterable[PlannedOccurrence]:
    for zone in schedule.zones:
        for fire in fire_times(
            schedule.rule, parse_zone(zone), cursor, until=now, limit=MAX_PER_TICK + 1
        ):
            missed = not schedule.send_late and now - fire.utc > schedule.grace
            yield PlannedOccurrence(zone, fire.utc, missed, fire.note or "")


def _next_fire(schedule: Schedule, after: datetime, now: datetime) -> datetime | None:
    if schedule.per_recipient:
        if next_fire_after(schedule.rule, parse_zone(LAST_ZONE), after) is None:
            return None
        candidates = [now + RECIPIENT_RECHECK]
    else:
        candidates = []
    for zone in schedule.zones:
        if (fire := next_fire_after(schedule.rule, parse_zone(zone), after)) is not None:
            candidates.append(fire)
    return min(candidates, default=None)
