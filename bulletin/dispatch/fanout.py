"""Fan-out: one Delivery row per recipient and channel, inserted by the database in one pass.

``INSERT … SELECT … ON CONFLICT DO NOTHING`` streams the audience inside the database, so
100k recipients never become 100k Python objects, and a second fan-out of the same occurrence
(a racing tick, a retried task) inserts nothing. Opt-outs are decided in the same statement:
an opted-out person gets a ``skipped`` row with the reason, so HR sees why.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import connection, transaction
from django.db.models import (
    Case,
    CharField,
    DateTimeField,
    Exists,
    IntegerField,
    OuterRef,
    QuerySet,
    Value,
    When,
)

from bulletin.dispatch.audience import audience_of
from bulletin.domain.models import (
    Channel,
    ChannelOptOut,
    Delivery,
    DeliveryState,
    Employee,
    Occurrence,
    OccurrenceState,
    Place,
)

log = logging.getLogger(__name__)

_COLUMNS = (
    "occurrence_id, employee_id, place_id, channel, state, attempts, due_at, last_error, "
    "created_at, updated_at"
)


def fan_out(occurrence: Occurrence, now: datetime) -> int:
    """Create the occurrence's deliveries (a snapshot of the audience now); returns how many."""
    announcement = occurrence.announcement
    people = audience_of(announcement)
    if announcement.per_recipient_zone:
        people = people.filter(timezone=occurrence.zone)
    places = (
        [] if announcement.per_recipient_zone else list(announcement.places.filter(active=True))
    )
    with transaction.atomic():
        for channel in announcement.channels:
            _insert_people(people, occurrence, channel, None, now)
        for place in places:
            _insert_place(place, people, occurrence, now)
        count = Delivery.objects.filter(occurrence=occurrence).count()
        Occurrence.objects.filter(pk=occurrence.pk, state=OccurrenceState.PLANNED).update(
            state=OccurrenceState.FANNED_OUT, delivery_count=count
        )
    log.info(
        "occurrence fanned out",
        extra={
            "occurrence_id": occurrence.pk,
            "announcement_id": announcement.pk,
            "deliveries": count,
        },
    )
    return count


def _insert_place(
    place: Place, people: QuerySet[Employee], occurrence: Occurrence, now: datetime
) -> None:
    if place.per_person:
        _insert_people(people, occurrence, place.channel, place.pk, now)
        return
    row = Delivery(occurrence=occurrence, place=place, channel=place.channel, due_at=now)
    Delivery.objects.bulk_create([row], ignore_conflicts=True)


def _state(occurrence: Occurrence, channel: str) -> tuple[Case | Value, Case | Value]:
    """The new row's state and reason: skipped where the person opted out of the channel."""
    pending = Value(DeliveryState.PENDING.value, output_field=CharField())
    if occurrence.announcement.mandatory or channel == Channel.INAPP:
        return pending, Value("", output_field=CharField())
    opted_out = Exists(ChannelOptOut.objects.filter(employee=OuterRef("pk"), channel=channel))
    state = Case(When(opted_out, then=Value(DeliveryState.SKIPPED.value)), default=pending)
    reason = Case(When(opted_out, then=Value(f"opted out of {channel}")), default=Value(""))
    return state, reason


def _insert_people(
    people: QuerySet[Employee],
    occurrence: Occurrence,
    channel: str,
    place_id: int | None,
    now: datetime,
) -> None:
    state, reason = _state(occurrence, channel)
    rows = (
        people.order_by()
        .annotate(
            new_occurrence=Value(occurrence.pk, output_field=IntegerField()),
            new_place=Value(place_id, output_field=IntegerField()),
            new_channel=Value(channel, output_field=CharField()),
            new_state=state,
            new_attempts=Value(0, output_field=IntegerField()),
            new_due=Value(now, output_field=DateTimeField()),
            new_error=reason,
            new_created=Value(now, output_field=DateTimeField()),
            new_updated=Value(now, output_field=DateTimeField()),
        )
        .values_list(
            "new_occurrence",
            "id",
            "new_place",
            "new_channel",
            "new_state",
            "new_attempts",
            "new_due",
            "new_error",
            "new_created",
            "new_updated",
        )
    )
    select_sql, params = rows.query.sql_with_params()
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        # The SELECT always has a WHERE (active=true), which SQLite needs to parse ON CONFLICT.
        cursor.execute(
            f"INSERT INTO {table} ({_COLUMNS}) {select_sql} ON CONFLICT DO NOTHING", params
        )


def fan_out_planned(now: datetime, limit: int = 50) -> int:
    """Fan out occurrences still waiting for it (a crashed tick leaves them planned)."""
    waiting = (
        Occurrence.objects.filter(state=OccurrenceState.PLANNED)
        .select_related("announcement")
        .order_by("fire_at")[:limit]
    )
    return sum(_fan_out_safely(occurrence, now) for occurrence in waiting)


def _fan_out_safely(occurrence: Occurrence, now: datetime) -> int:
    # Left planned on failure: the next tick tries again, and other occurrences still go out.
    try:
        return fan_out(occurrence, now)
    except Exception:
        log.exception("fan-out failed", extra={"occurrence_id": occurrence.pk})
        return 0
