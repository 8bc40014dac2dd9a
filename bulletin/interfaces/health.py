"""What an operator asks first: how many deliveries in each state, and is anything stuck."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Min
from django.utils import timezone

from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    Delivery,
    DeliveryState,
    Occurrence,
    OccurrenceState,
)


def _counts(queryset: Any, field: str, states: Any) -> dict[str, int]:
    found = dict(queryset.values_list(field).annotate(n=Count("pk")).order_by())
    return {state.value: found.get(state.value, 0) for state in states}


def snapshot() -> dict[str, Any]:
    now = timezone.now()
    oldest_due = Delivery.objects.filter(state=DeliveryState.PENDING, due_at__lte=now).aggregate(
        at=Min("due_at")
    )["at"]
    lagging = Announcement.objects.filter(
        status=AnnouncementStatus.SCHEDULED, next_fire_at__lte=now
    ).aggregate(at=Min("next_fire_at"))["at"]
    return {
        "deliveries": _counts(Delivery.objects, "state", DeliveryState),
        "occurrences": _counts(Occurrence.objects, "state", OccurrenceState),
        "announcements": _counts(Announcement.objects, "status", AnnouncementStatus),
        "oldest_due_at": oldest_due.isoformat() if oldest_due else None,
        "oldest_due_age_seconds": (now - oldest_due).total_seconds() if oldest_due else 0.0,
        "planner_lag_seconds": (now - lagging).total_seconds() if lagging else 0.0,
    }
