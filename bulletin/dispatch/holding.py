"""Deliveries that wait for their recipient's working window (the policy is stated once, in
:mod:`bulletin.scheduling.working`).

When an occurrence of a "within working hours" announcement fans out, each person's delivery
due outside their window becomes ``held`` with ``due_at`` = the start of their next window and
the reason beside it: the same row, so it can never be sent twice. ``release_opened`` moves
held rows whose window has opened back to ``pending`` (a conditional UPDATE: racing
dispatchers move each row once, and the claim still decides who sends it). Held rows of a
paused announcement stay held until it resumes; cancelling withdraws them.

People are grouped by what decides their window (zone, location, leave), so a fan-out to
100,000 people computes a few dozen windows and runs one UPDATE per group that waits.
"""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Case, Count, DateField, F, Q, QuerySet, When

from bulletin.conf import options
from bulletin.dispatch.audience import audience_of
from bulletin.dispatch.ledger import orders
from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    Delivery,
    DeliveryState,
    Employee,
    Location,
    Occurrence,
)
from bulletin.domain.records import AuditAction, AuditEvent
from bulletin.scheduling.working import Availability, Hold, WorkingWeek, hold_for, local_text

log = logging.getLogger(__name__)

# What decides a person's window: (zone, location name or None, last day of leave or None).
Group = tuple[str, str | None, date | None]


def hold_outside_windows(occurrence: Occurrence, now: datetime) -> int:
    """Hold the occurrence's pending person deliveries that are due outside their recipient's
    window; returns how many. Call inside the fan-out's transaction."""
    announcement = occurrence.announcement
    if not announcement.working_hours:
        return 0
    if announcement.mandatory:
        _audit_not_held(occurrence)
        return 0
    waiting = _pending_people(occurrence)
    held = 0
    for group, hold in _holds(_groups(waiting, now), now).items():
        held += _hold(waiting, group, hold, now)
    if held:
        log.info(
            "deliveries held for working hours",
            extra={"occurrence_id": occurrence.pk, "deliveries": held},
        )
    return held


def _audit_not_held(occurrence: Occurrence) -> None:
    """Mandatory (a safety notice) goes at once: on record, once per occurrence."""
    AuditEvent.objects.create(
        action=AuditAction.NOT_HELD,
        announcement_id=occurrence.announcement_id,
        detail={"occurrence": occurrence.pk, "reason": "mandatory"},
    )


def _pending_people(occurrence: Occurrence) -> QuerySet[Delivery]:
    # Places (channels, webhooks, even per-person webhooks) reach a system, not a person.
    return Delivery.objects.filter(
        occurrence=occurrence, place__isnull=True, state=DeliveryState.PENDING
    )


def _leave_cutoff(now: datetime) -> date:
    """Leave that ended before this date cannot matter now, in any zone (UTC-12 is a day
    behind at most): it is grouped with "no leave", so old leave adds no groups."""
    return (now - timedelta(days=1)).date()


def _away(prefix: str, now: datetime) -> Case:
    """The last day of leave where it can still matter, else NULL."""
    field = f"{prefix}away_until"
    recent = When(Q(**{f"{field}__gte": _leave_cutoff(now)}), then=F(field))
    return Case(recent, default=None, output_field=DateField())


def _groups(waiting: QuerySet[Delivery], now: datetime) -> list[Group]:
    rows = (
        waiting.order_by()
        .annotate(away=_away("employee__", now))
        .values_list("employee__timezone", "employee__location__name", "away")
        .distinct()
    )
    return [(zone, location, away) for zone, location, away in rows]


def _holds(groups: Iterable[Group], due: datetime) -> dict[Group, Hold]:
    """The groups that wait at ``due``, each with its hold."""
    availability = Availabilities()
    found = {group: hold_for(due, availability.of(*group)) for group in groups}
    return {group: hold for group, hold in found.items() if hold is not None}


class Availabilities:
    """Availability for a group, with each location read once."""

    def __init__(self) -> None:
        self._locations = {location.name: location for location in Location.objects.all()}
        self._default = WorkingWeek.parse(options().working_week)

    def of(self, zone: str, location: str | None, away: date | None) -> Availability:
        place = self._locations.get(location) if location else None
        week = place.week if place else self._default
        region = place.region if place else None
        return Availability(zoneinfo.ZoneInfo(zone), week, region, away)


def _people(group: Group, now: datetime) -> QuerySet[Employee]:
    zone, location, away = group
    people = Employee.objects.filter(timezone=zone)
    people = (
        people.filter(location__isnull=True)
        if location is None
        else people.filter(location__name=location)
    )
    if away is not None:
        return people.filter(away_until=away)
    cutoff = _leave_cutoff(now)
    return people.filter(Q(away_until__isnull=True) | Q(away_until__lt=cutoff))


def _hold(waiting: QuerySet[Delivery], group: Group, hold: Hold, now: datetime) -> int:
    return orders.hold(
        waiting.filter(employee__in=_people(group, now)), hold.until, hold.reason, now
    )


def release_opened(now: datetime) -> int:
    """Held deliveries whose window has opened become pending (due when it opened), except a
    paused announcement's; returns how many."""
    opened = Delivery.objects.filter(state=DeliveryState.HELD, due_at__lte=now).exclude(
        occurrence__announcement__status=AnnouncementStatus.PAUSED
    )
    # A read first: dispatchers call this every idle second, and on SQLite even an UPDATE
    # that changes nothing takes the write lock.
    released = orders.unhold(opened, now) if opened.exists() else 0
    if released:
        log.info("held deliveries released: working window open", extra={"deliveries": released})
    return released


def release_now(announcement: Announcement, now: datetime) -> int:
    """Send the announcement's held deliveries now, working hours or not; returns how many."""
    held = Delivery.objects.filter(occurrence__announcement=announcement, state=DeliveryState.HELD)
    released = orders.unhold(held, now, due=now)
    log.info(
        "held deliveries released: sent now regardless",
        extra={"announcement_id": announcement.pk, "deliveries": released},
    )
    return released


@dataclass(frozen=True)
class Waiting:
    """People of an occurrence who will receive it later, alike in where, why and when."""

    people: int
    where: str  # their location's name, else their zone
    reason: str
    until: datetime
    zone: str

    def __str__(self) -> str:
        when = local_text(self.until, zoneinfo.ZoneInfo(self.zone))
        return f"{self.people} in {self.where}: {self.reason}, delivered {when}"


def waiting_at(announcement: Announcement, due: datetime, zone: str | None = None) -> list[Waiting]:
    """Who would wait if an occurrence fanned out at ``due`` (in ``zone``, for an announcement
    at each recipient's local time), grouped; most people first. Empty unless it is
    delivered within working hours to people, and never for a mandatory one."""
    if not announcement.working_hours or announcement.mandatory or not announcement.channels:
        return []
    people = audience_of(announcement)
    return waiting_among(people.filter(timezone=zone) if zone else people, due)


def waiting_among(people: QuerySet[Employee], due: datetime) -> list[Waiting]:
    """Which of ``people`` would wait at ``due``, grouped alike; most people first."""
    counts = (
        people.order_by()
        .annotate(away=_away("", due))
        .values_list("timezone", "location__name", "away")
        .annotate(n=Count("id"))
    )
    sizes = {(tz, location, away): n for tz, location, away, n in counts}
    return _merged(sizes, _holds(sizes, due))


def _merged(sizes: dict[Group, int], holds: dict[Group, Hold]) -> list[Waiting]:
    merged: dict[tuple[str, str, datetime, str], int] = {}
    for group, hold in holds.items():
        zone, location, _ = group
        key = (location or zone, hold.reason, hold.until, zone)
        merged[key] = merged.get(key, 0) + sizes[group]
    found = [
        Waiting(n, where, reason, until, zone) for (where, reason, until, zone), n in merged.items()
    ]
    return sorted(found, key=lambda w: (-w.people, w.until, w.where))
