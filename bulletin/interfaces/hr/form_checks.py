"""Every problem of HR's announcement form in one pass: when the form's own checks fail, the
service's checks run too, on what could be read, so a missing title and a missing channel
are said together rather than one after the other."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from bulletin.dispatch import announcements
from bulletin.domain.models import Announcement, AudienceKind, ScheduleKind
from bulletin.interfaces.hr.forms import AnnouncementForm

# What is read of a form with problems: model field → (cleaned name, default when absent).
_LENIENT: dict[str, tuple[str, Any]] = {
    "title": ("title", ""),
    "body": ("body", ""),
    "audience_kind": ("audience_kind", AudienceKind.ALL),
    "channels": ("channels", []),
    "mandatory": ("mandatory", False),
    "requires_ack": ("requires_ack", False),
    "remind_after_days": ("remind_after_days", None),
    "remind_times": ("remind_times", 0),
    "schedule_kind": ("schedule_kind", ScheduleKind.CRON),
    "cron": ("cron_value", ""),
    "at_local": ("at_value", ""),
    "at_fold": ("fold_value", None),
    "timezone": ("zone_value", ""),
    "per_recipient_zone": ("per_recipient_zone", False),
}


def check_the_rest(form: AnnouncementForm) -> None:
    """Add the service's problems to a form that already has some; a field the form faulted
    is not judged again (its value was not read)."""
    faulted = set(form.errors)
    try:
        announcements.validate(_readable(form.cleaned_data), places=_places(form.cleaned_data))
    except ValidationError as exc:
        form.add_service_errors(exc, skip=faulted)


def _readable(data: dict[str, Any]) -> Announcement:
    values = {name: _or(data.get(field), default) for name, (field, default) in _LENIENT.items()}
    item = Announcement(**values)
    column = "location" if item.audience_kind == AudienceKind.LOCATION else "department"
    item.audience_values = list(data.get(column) or [])
    return item


def _places(data: dict[str, Any]) -> list[Any]:
    return list(data.get("places") or [])


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value
