"""Who an announcement reaches, as a queryset: evaluated in the database, never in memory."""

from __future__ import annotations

from difflib import get_close_matches

from django.db.models import Exists, OuterRef, QuerySet

from bulletin.domain.engagement import Engagement
from bulletin.domain.models import (
    Announcement,
    AudienceKind,
    Delivery,
    DeliveryState,
    Employee,
    Occurrence,
)


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


def reminded_people(reminder: Occurrence) -> QuerySet[Employee]:
    """Who a reminder reaches, decided by the database as it fans out: active people its
    occurrence was sent to (any channel) who have not acknowledged it (nor a reminder of it)."""
    root_id = reminder.reminder_of_id or 0
    reached = Delivery.objects.filter(
        occurrence_id=root_id, employee=OuterRef("pk"), state=DeliveryState.SENT
    )
    acknowledged = Engagement.objects.filter(
        occurrence_id=root_id, employee=OuterRef("pk"), acknowledged_at__isnull=False
    )
    return Employee.objects.filter(Exists(reached), ~Exists(acknowledged), active=True)


def not_acknowledged(root: Occurrence) -> QuerySet[Employee]:
    """The people a reminder of ``root`` would reach now (what HR is shown before sending)."""
    probe = Occurrence(reminder_of_id=root.pk)
    return reminded_people(probe)


def unmatched(announcement: Announcement) -> list[str]:
    """What is wrong with an audience that reaches nobody, one message per cause, with the
    closest names that do exist ("department 'Salse' matches nobody; did you mean 'Sales'?");
    [] when it reaches someone."""
    kind = announcement.audience_kind
    # As the service will keep them: trimmed, once each.
    names = list(dict.fromkeys(str(n).strip() for n in announcement.audience_values or []))
    names = [name for name in names if name]
    if kind in (AudienceKind.DEPARTMENT, AudienceKind.LOCATION):
        known = _known_names(kind)
        problems = [_no_one_named(kind, name, known) for name in names if name not in known]
        named = Announcement(audience_kind=kind, audience_values=names)
        if problems or not names or audience_of(named).exists():
            return problems
        return [f"no active employee is in {listed(names)}"]
    if kind == AudienceKind.LIST and announcement.pk is None:
        return []  # the chosen people are set after it is saved: checked then
    if audience_of(announcement).exists():
        return []
    return ["this audience matches no active employee"]


def _known_names(kind: str) -> set[str]:
    """The department (or location) names active employees have now."""
    column = "department" if kind == AudienceKind.DEPARTMENT else "location"
    found = Employee.objects.filter(active=True).values_list(column, flat=True).distinct()
    return {name for name in found if name}


def _no_one_named(kind: str, name: str, known: set[str]) -> str:
    # difflib (the standard library's): a typo is a few edits from the name meant.
    close = get_close_matches(name, sorted(known), n=3, cutoff=0.6)
    close += [k for k in sorted(known) if k.casefold() == name.casefold() and k not in close]
    hint = f"; did you mean {listed(close, 'or')}?" if close else ""
    return f"{kind} '{name}' matches nobody{hint}"


def listed(names: list[str], last: str = "and", *, quoted: bool = True) -> str:
    """ "'Sales'", "'Sales' and 'Support'", "'Sales', 'Support' or 'Legal'" (unquoted for
    prose such as an email's footer)."""
    shown = [f"'{name}'" if quoted else str(name) for name in names]
    return f" {last} ".join(filter(None, [", ".join(shown[:-1]), *shown[-1:]]))
