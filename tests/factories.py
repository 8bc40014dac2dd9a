"""Small builders for domain rows, so each test states only what matters to it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import time_machine
from django.utils import timezone

from bulletin.dispatch.announcements import schedule
from bulletin.dispatch.planning import tick
from bulletin.domain.models import (
    Announcement,
    Delivery,
    Employee,
    InboxItem,
    Location,
    Occurrence,
    OccurrenceState,
    ScheduleKind,
)

__all__ = [
    "Announcement",
    "announcement",
    "api_announcement",
    "compose_form",
    "created_earlier",
    "employees",
    "fired",
    "inbox_item",
    "location",
    "tick_after",
]


def employees(
    count: int, *, zone: str = "Europe/London", prefix: str = "person", **fields: Any
) -> list[Employee]:
    """``location`` may be a name: the location is made (in ``zone``) if it does not exist."""
    if isinstance(fields.get("location"), str):
        fields["location"] = location(fields["location"], zone=zone)
    rows = [
        Employee(email=f"{prefix}{n}@example.com", name=f"Person {n}", timezone=zone, **fields)
        for n in range(count)
    ]
    return Employee.objects.bulk_create(rows)


def location(name: str, *, zone: str = "UTC", **fields: Any) -> Location:
    found, _ = Location.objects.get_or_create(name=name, defaults={"timezone": zone, **fields})
    return found


def announcement(
    *,
    now: datetime,
    cron: str = "* * * * *",
    at: str = "",
    zone: str = "Europe/London",
    channels: tuple[str, ...] = ("email",),
    grace: timedelta = timedelta(hours=1),
    places: list[Any] | None = None,
    **fields: Any,
) -> Announcement:
    """A scheduled announcement, as if created at ``now``."""
    item = Announcement(
        title=fields.pop("title", "Quarterly update"),
        body=fields.pop("body", "Hello {{ first_name }}, **news**."),
        channels=list(channels),
        schedule_kind=ScheduleKind.ONCE if at else ScheduleKind.CRON,
        cron="" if at else cron,
        at_local=at,
        timezone="" if fields.get("per_recipient_zone") else zone,
        misfire_grace=grace,
        **fields,
    )
    return schedule(item, now=now, places=places)


def created_earlier(minutes: int = 2, **fields: Any) -> Announcement:
    """An announcement scheduled ``minutes`` ago, one second past a whole minute."""
    start = (timezone.now() - timedelta(minutes=minutes)).replace(second=1, microsecond=0)
    with time_machine.travel(start, tick=False):
        return announcement(now=start, **fields)


def tick_after(item: Announcement) -> None:
    """Tick once, a minute after the announcement was created: exactly one boundary between."""
    with time_machine.travel(item.created_at + timedelta(seconds=60), tick=False):
        tick()


def fired(**fields: Any) -> Announcement:
    """An every-minute announcement created two minutes ago, planned and fanned out once."""
    item = created_earlier(**fields)
    tick_after(item)
    return item


def person(name: str, *roles: str, password: str = "pw", **fields: Any) -> Any:
    """A login named ``name`` in the given role groups, with a fresh permission cache."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    users = get_user_model()
    user = users.objects.create_user(name, f"{name}@example.com", password, **fields)
    user.groups.add(*Group.objects.filter(name__in=roles))
    return users.objects.get(pk=user.pk)


def announce_cli(directory: Any, *arguments: str) -> Announcement:
    """Run `bulletin announce --title T --body-file …` in-process; the new announcement."""
    import io

    from django.core.management import call_command

    body = directory / "body.md"
    body.write_text("Hi")
    out = io.StringIO()
    call_command("announce", "--title", "T", "--body-file", str(body), *arguments, stdout=out)
    return Announcement.objects.get(pk=int(out.getvalue()))


def inbox_item(
    employee: Employee,
    title: str = "Quarterly update",
    *,
    at: datetime | None = None,
    requires_ack: bool = False,
    html: str = "<p>Hello <strong>there</strong>.</p>",
) -> InboxItem:
    """An item as the in-app channel writes it: its own announcement, occurrence and delivery."""
    at = at or timezone.now()
    announcement = Announcement.objects.create(
        title=title,
        body="Hello",
        channels=["inapp"],
        schedule_kind=ScheduleKind.ONCE,
        at_local="2026-01-01T09:00",
        timezone="Europe/London",
        requires_ack=requires_ack,
    )
    occurrence = Occurrence.objects.create(
        announcement=announcement,
        zone="Europe/London",
        fire_at=at,
        state=OccurrenceState.FANNED_OUT,
    )
    delivery = Delivery.objects.create(
        occurrence=occurrence, employee=employee, channel="inapp", due_at=at, state="sent"
    )
    return InboxItem.objects.create(
        delivery=delivery,
        employee=employee,
        announcement=announcement,
        title=title,
        html=html,
        requires_ack=requires_ack,
        created_at=at,
    )


def compose_form(**overrides: Any) -> dict[str, Any]:
    """The HR compose form filled in for a weekday 09:00 email announcement to everyone."""
    data: dict[str, Any] = {
        "title": "Canteen reopens",
        "body": "Hello {{ first_name }}, the canteen reopens on **Monday**.",
        "audience_kind": "all",
        "channels": ["email"],
        "schedule_kind": "cron",
        "repeat": "weekdays",
        "time_of_day": "09:00",
        "timezone": "Europe/London",
        "action": "schedule",
    }
    return data | overrides


def api_announcement(**overrides: Any) -> dict[str, Any]:
    """An API body for a weekday 09:00 email announcement."""
    body: dict[str, Any] = {
        "title": "Canteen reopens",
        "body": "The canteen reopens on **Monday**, {{ first_name }}.",
        "channels": ["email"],
        "schedule": {"kind": "cron", "cron": "0 9 * * 1-5", "timezone": "Europe/London"},
    }
    return body | overrides


def put(rows: Any, **fields: Any) -> int:
    """Test set-up: put deliveries straight into the state a scenario needs (as no product
    path would), then rebuild the kept counts from the ledger so they stay right."""
    from django.db.models import QuerySet

    from bulletin.dispatch.ledger import counts

    changed = QuerySet.update(rows.all(), **fields)  # around the ledger's guard, deliberately
    counts.recount()
    return changed


def forget(rows: Any) -> None:
    """Test set-up: delete deliveries outright (no product path does: retention prunes), then
    rebuild the kept counts."""
    from django.db.models import QuerySet

    from bulletin.dispatch.ledger import counts

    QuerySet.delete(rows.all())
    counts.recount()
