"""Announcements in words for the HR pages: schedules, audiences, delivery counts, times.

Counting is done by the database (``GROUP BY state`` over the (occurrence, state) index), once
per page, never row by row in Python.
"""

from __future__ import annotations

import contextlib
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from bulletin.dispatch.announcements import parse_local
from bulletin.dispatch.ledger import counts
from bulletin.domain.models import (
    Announcement,
    AudienceKind,
    DeliveryState,
    ScheduleKind,
)
from bulletin.interfaces.hr.schedule import (
    abbreviation,
    day_text,
    describe_cron,
    local_text,
    weekday_name,
    zone_or_none,
)
from bulletin.scheduling.rules import ScheduleError, local_choices

UTC_ZONE = zoneinfo.ZoneInfo("UTC")


def display_zone(announcement: Announcement) -> zoneinfo.ZoneInfo:
    """The zone an announcement's times are shown in (UTC when each recipient has their own)."""
    if announcement.per_recipient_zone:
        return UTC_ZONE
    return zone_or_none(announcement.timezone) or UTC_ZONE


def in_zone(moment: datetime | None, zone: zoneinfo.ZoneInfo) -> str:
    return local_text(moment.astimezone(zone)) if moment is not None else ""


def schedule_summary(announcement: Announcement) -> str:
    where = (
        "at each recipient's local time"
        if announcement.per_recipient_zone
        else f"({announcement.timezone})"
    )
    if announcement.schedule_kind == ScheduleKind.CRON:
        return f"{describe_cron(announcement.cron)} {where}"
    text = f"Once, at {announcement.at_local.replace('T', ' ')}"
    try:
        at = parse_local(announcement.at_local)
    except ScheduleError:
        pass
    else:
        text = f"Once, on {weekday_name(at)} {day_text(at)} at {at:%H:%M}"
        if announcement.at_fold is not None:
            text += _which_copy(at, announcement.timezone, announcement.at_fold)
    return f"{text} {where}"


def _which_copy(at: datetime, zone_name: str, fold: int) -> str:
    """ " EST, the second 01:30" for a one-off time that happens twice."""
    zone = zone_or_none(zone_name)
    choices = local_choices(at, zone) if zone is not None else ()
    which = "first" if fold == 0 else "second"
    if len(choices) != 2 or zone is None:
        return f" (the {which} one)"
    return f" {abbreviation(choices[fold].astimezone(zone))}, the {which} {at:%H:%M}"


def audience_summary(announcement: Announcement) -> str:
    kind, names = announcement.audience_kind, list(announcement.audience_values or [])
    if kind == AudienceKind.DEPARTMENT:
        return f"{'Department' if len(names) == 1 else 'Departments'}: {', '.join(names)}"
    if kind == AudienceKind.LOCATION:
        return f"{'Location' if len(names) == 1 else 'Locations'}: {', '.join(names)}"
    if kind == AudienceKind.LIST:
        count = announcement.recipients.count()
        return f"{count} chosen {'person' if count == 1 else 'people'}"
    return "Everyone"


@dataclass
class Counts:
    pending: int = 0
    held: int = 0  # waiting for the recipient's working window, not for a dispatcher
    in_progress: int = 0
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    bounced: int = 0  # sent, then a hard bounce came back

    def add(self, state: str, n: int) -> None:
        if state in (DeliveryState.CLAIMED, DeliveryState.SENDING):
            self.in_progress += n
        elif hasattr(self, state):
            setattr(self, state, getattr(self, state) + n)

    def __add__(self, other: Counts) -> Counts:
        return Counts(**{name: getattr(self, name) + getattr(other, name) for name in _STATES})

    @property
    def total(self) -> int:
        return sum(getattr(self, name) for name in _STATES)

    def parts(self) -> list[tuple[str, int]]:
        """Non-zero states, worst news first, for a one-line summary."""
        named = [
            ("failed", self.failed),
            ("bounced", self.bounced),
            ("unknown", self.unknown),
            ("sent", self.sent),
            ("sending", self.in_progress),
            ("pending", self.pending),
            ("held", self.held),
            ("skipped", self.skipped),
        ]
        return [(name, n) for name, n in named if n]


_STATES = tuple(field.name for field in fields(Counts))


def counts_by_announcement(ids: Iterable[int]) -> dict[int, Counts]:
    """Deliveries by state, kept (pruned ones included: they did happen)."""
    return _grouped("announcement_id", counts.of_announcements(list(ids)))


def counts_by_occurrence(announcement: Announcement) -> dict[int, Counts]:
    return _grouped("occurrence_id", counts.of_announcements([announcement.pk]))


def _grouped(key: str, kept: list[counts.Count]) -> dict[int, Counts]:
    found: dict[int, Counts] = defaultdict(Counts)
    for count in kept:
        found[getattr(count, key)].add(count.state, count.total)
    return found


def person_name(user: Any) -> str:
    if user is None:
        return "Bulletin (system)"
    full = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return str(full or user.get_username())


def audit_detail(detail: dict[str, Any], zone: zoneinfo.ZoneInfo) -> str:
    """One line for an audit event's detail."""
    parts = []
    if when := detail.get("next_fire_at"):
        with contextlib.suppress(TypeError, ValueError):
            parts.append(f"next send {in_zone(datetime.fromisoformat(when), zone)}")
    if "version" in detail:
        parts.append(f"version {detail['version']}")
    if fields := detail.get("fields"):
        parts.append("changed " + ", ".join(str(name).replace("_", " ") for name in fields))
    if "deliveries" in detail:
        parts.append(_deliveries_detail(detail["deliveries"], detail.get("states")))
    if to := detail.get("to"):
        parts.append(f"to {to}")
    if verdict := detail.get("settled_as"):
        n = len(detail.get("delivery_ids", []))
        parts.append(f"{n} unknown deliver{'y' if n == 1 else 'ies'} marked {verdict}")
    if reason := detail.get("reason"):
        parts.append(str(reason))
    return "; ".join(parts)


def _deliveries_detail(n: int, states: list[str] | None) -> str:
    noun = f"deliver{'y' if n == 1 else 'ies'}"
    if states is None:  # "send now regardless" (a retry names the states it sent again)
        return f"{n} held {noun} sent now regardless of working hours"
    return f"{n} {' or '.join(states)} {noun} sent again"
