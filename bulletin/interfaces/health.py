"""What an operator asks first: how many deliveries in each state, and is anything stuck.

``lag()`` is the cheap part (two queries, each served by a partial index) that /healthz asks on
every load-balancer probe; ``snapshot()`` adds the counts that `bulletin status` prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Min
from django.utils import timezone

from bulletin.dispatch.ledger import counts
from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    Delivery,
    DeliveryState,
    Occurrence,
    OccurrenceState,
    Tallied,
    Tally,
)

DUPLICATE = "duplicate."


@dataclass(frozen=True)
class Lag:
    """How far behind planning and sending are, at ``now``."""

    now: datetime
    planner_due_at: datetime | None  # the oldest next_fire_at that has passed
    oldest_due_id: int | None  # the pending delivery due longest ago
    oldest_due_at: datetime | None

    @property
    def planner_lag_seconds(self) -> float:
        return (self.now - self.planner_due_at).total_seconds() if self.planner_due_at else 0.0

    @property
    def oldest_due_age_seconds(self) -> float:
        return (self.now - self.oldest_due_at).total_seconds() if self.oldest_due_at else 0.0


def lag(now: datetime | None = None) -> Lag:
    now = now or timezone.now()
    # delivery_due_idx: state='pending' AND due_at <= now ORDER BY due_at
    oldest = (
        Delivery.objects.filter(state=DeliveryState.PENDING, due_at__lte=now)
        .order_by("due_at")
        .values_list("pk", "due_at")
        .first()
    )
    # announcement_due_idx: status='scheduled' AND next_fire_at <= now
    planner_due_at = Announcement.objects.filter(
        status=AnnouncementStatus.SCHEDULED, next_fire_at__lte=now
    ).aggregate(at=Min("next_fire_at"))["at"]
    oldest_id, oldest_at = oldest if oldest else (None, None)
    return Lag(now, planner_due_at, oldest_id, oldest_at)


def duplicates_prevented() -> dict[str, int]:
    """Second copies refused, by reason (every reason named, zero or not)."""
    totals = dict(Tally.objects.filter(name__startswith=DUPLICATE).values_list("name", "total"))
    return {
        kind.value.removeprefix(DUPLICATE): totals.get(kind.value, 0)
        for kind in Tallied
        if kind.value.startswith(DUPLICATE)
    }


def _counts(queryset: Any, field: str, states: Any) -> dict[str, int]:
    found = dict(queryset.values_list(field).annotate(n=Count("pk")).order_by())
    return {state.value: found.get(state.value, 0) for state in states}


def delivery_totals() -> dict[str, int]:
    """Deliveries by state, every state named: kept counts (pruned ones included)."""
    totals = counts.by_state(counts.kept())
    return {state.value: totals.get(state.value, 0) for state in DeliveryState}


def snapshot() -> dict[str, Any]:
    behind = lag()
    return {
        "deliveries": delivery_totals(),
        "occurrences": _counts(Occurrence.objects, "state", OccurrenceState),
        "announcements": _counts(Announcement.objects, "status", AnnouncementStatus),
        "oldest_due_at": behind.oldest_due_at.isoformat() if behind.oldest_due_at else None,
        "oldest_due_delivery_id": behind.oldest_due_id,
        "oldest_due_age_seconds": behind.oldest_due_age_seconds,
        "planner_lag_seconds": behind.planner_lag_seconds,
        "duplicates_prevented": duplicates_prevented(),
    }
