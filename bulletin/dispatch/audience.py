"""Who an announcement reaches, as a queryset: evaluated in the database, never in memory."""

from __future__ import annotations

from django.db.models import QuerySet

from bulletin.domain.models import Announcement, AudienceKind, Employee


def audience_of(announcement: Announcement) -> QuerySet[Employee]:
    """The active employees it reaches now. Department and location audiences are rules (anyone
    in one of the named departments or locations at the time), so later joiners are included."""
    active = Employee.objects.filter(active=True)
    kind, names = announcement.audience_kind, list(announcement.audience_values or [])
    if kind == AudienceKind.DEPARTMENT:
        return active.filter(department__in=names)
    if kind == AudienceKind.LOCATION:
        return active.filter(location__in=names)
    if kind == AudienceKind.LIST:
        return active.filter(
            id__in=announcement.recipients.through.objects.filter(
                announcement_id=announcement.pk
            ).values("employee_id")
        )
    return active


def audience_zones(announcement: Announcement) -> tuple[str, ...]:
    """The zones an occurrence must be planned in: one, or each recipient's own."""
    if not announcement.per_recipient_zone:
        return (announcement.timezone,)
    zones = audience_of(announcement).values_list("timezone", flat=True).distinct()
    return tuple(sorted(zones))
