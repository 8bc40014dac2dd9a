"""Working hours on the HR screens: who an announcement being written would reach later (the
compose page's schedule panel), whose deliveries wait now (the detail page), and "send now
regardless".

The policy is :mod:`bulletin.scheduling.working`'s and who waits is
:func:`bulletin.dispatch.holding.waiting_at`'s, asked about an unsaved announcement built from
the form, so the preview says what fan-out will do.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.http import require_POST

from bulletin.dispatch import lifecycle
from bulletin.dispatch.audience import audience_of
from bulletin.dispatch.holding import Waiting, waiting_among, waiting_at
from bulletin.dispatch.planning import rule_of
from bulletin.domain.models import Announcement, AnnouncementStatus, AudienceKind, Employee
from bulletin.interfaces.hr.access import hr_view
from bulletin.scheduling.rules import Rule, ScheduleError, fire_times, parse_zone
from bulletin.scheduling.working import local_text

MANDATORY = "Mandatory: sent at once to everyone, working hours or not."
ZONES_PREVIEWED = 20  # an audience in more zones is shown for its twenty largest
GROUPS_SHOWN = 20
PLANNING = (
    AnnouncementStatus.DRAFT,
    AnnouncementStatus.PENDING_APPROVAL,
    AnnouncementStatus.SCHEDULED,
    AnnouncementStatus.PAUSED,
)


# --- Before sending: the compose page ----------------------------------------------------


def draft_of(params: Any, *, working_hours: bool, mandatory: bool) -> Announcement:
    """An unsaved announcement with the form's audience, channels and options (never saved)."""
    kind = params.get("audience_kind") or AudienceKind.ALL
    column = "location" if kind == AudienceKind.LOCATION else "department"
    names = [name.strip() for name in params.getlist(column) if name.strip()]
    return Announcement(
        audience_kind=kind,
        audience_values=names,
        channels=[channel for channel in params.getlist("channels") if channel],
        working_hours=working_hours,
        mandatory=mandatory,
    )


def preview(
    draft: Announcement,
    people: QuerySet[Employee],
    rule: Rule,
    zone: zoneinfo.ZoneInfo,
    now: datetime,
    *,
    per_recipient: bool,
) -> dict[str, Any] | None:
    """Who receives the next send later and why (at each recipient's local time: the next
    send in each of the audience's zones); None when working hours are off or no person is
    reached."""
    if not draft.working_hours or not draft.channels or not people.exists():
        return None
    if draft.mandatory:
        return {"note": MANDATORY, "lines": [], "people": 0}
    found: list[Waiting] = []
    names: list[str | None] = [*_zones_of(people)] if per_recipient else [None]
    for name in names:
        due = _next_fire(rule, _zone(name) if name else zone, now)
        if due is not None:
            found += _waiting(draft, people, due, name)
    found.sort(key=lambda w: (-w.people, w.until, w.where))
    total = sum(w.people for w in found)
    note = _note(total, "in each zone" if per_recipient else "")
    return {"note": note, "lines": [str(w) for w in found], "people": total}


def _next_fire(rule: Rule, zone: zoneinfo.ZoneInfo, now: datetime) -> datetime | None:
    try:
        fire = next(iter(fire_times(rule, zone, now, limit=1)), None)
    except ScheduleError:  # a one-off time this zone lacks: the schedule panel says so
        return None
    return fire.utc if fire is not None else None


def _zones_of(people: QuerySet[Employee]) -> list[str]:
    rows = people.order_by().values("timezone").annotate(n=Count("id")).order_by("-n", "timezone")
    return [row["timezone"] for row in rows[:ZONES_PREVIEWED]]


def next_send(item: Announcement) -> dict[str, Any] | None:
    """The same for a saved announcement's next send, on its detail page (none once it has
    stopped planning)."""
    if item.status not in PLANNING:
        return None
    try:
        rule, zone = rule_of(item), parse_zone(item.timezone or "UTC")
    except ScheduleError:
        return None
    now = timezone.now()
    after = max(item.planned_until or now, now)
    people = audience_of(item)
    return preview(item, people, rule, zone, after, per_recipient=item.per_recipient_zone)


def _note(total: int, where: str) -> str:
    send = f"the next send {where}".strip()
    if not total:
        return f"Working hours: at {send} everyone in this audience is within theirs."
    who = "person receives" if total == 1 else "people receive"
    return f"Working hours: at {send} {total} {who} it later:"


def _waiting(
    draft: Announcement, people: QuerySet[Employee], due: datetime, zone: str | None
) -> list[Waiting]:
    if draft.audience_kind != AudienceKind.LIST:
        return waiting_at(draft, due, zone)
    # Chosen people live in a many-to-many table an unsaved announcement cannot have.
    return waiting_among(people.filter(timezone=zone) if zone else people, due)


# --- After sending: the detail page ------------------------------------------------------


@dataclass(frozen=True)
class HeldGroup:
    deliveries: int
    where: str
    until: str  # on the recipients' own clock
    reason: str

    def __str__(self) -> str:
        return f"{self.deliveries} in {self.where} held until {self.until} — {self.reason}"


def held_groups(announcement: Announcement) -> list[HeldGroup]:
    """Its held deliveries grouped by where, until when and why; the largest groups first."""
    rows = (
        lifecycle.held(announcement)
        .values_list("employee__location", "employee__timezone", "due_at", "hold_reason")
        .annotate(n=Count("id"))
        .order_by("-n", "due_at")[:GROUPS_SHOWN]
    )
    return [
        HeldGroup(n, location or zone, local_text(until, _zone(zone)), reason or "outside hours")
        for location, zone, until, reason, n in rows
    ]


def _zone(name: str | None) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


@hr_view("view_announcement")
@require_POST
def send_now(request: HttpRequest, pk: int) -> HttpResponse:
    """Release what waits for working hours (the schedule permission is checked by
    lifecycle.send_now, which also writes the audit entry)."""
    item = get_object_or_404(Announcement, pk=pk)
    count = lifecycle.send_now(item, request.user)
    if count:
        noun = "delivery" if count == 1 else "deliveries"
        messages.success(request, f"{count} {noun} sent now regardless of working hours.")
    else:
        messages.info(request, "Nothing was waiting for working hours.")
    return redirect("hr:detail", pk=item.pk)
