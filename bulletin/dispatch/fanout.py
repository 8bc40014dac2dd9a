"""Fan-out: one Delivery row per recipient and channel, inserted by the database in one pass.

``INSERT … SELECT`` streams the audience inside the database, so 100k recipients never become
100k Python objects. A second fan-out of the same occurrence (a racing tick, a retried task)
inserts nothing: it first locks the occurrence row and finds it no longer ``planned``. The
unique constraints stay the last word — a duplicate row would fail the whole transaction, never
land — but they are not asked to sort out the race row by row: ``ON CONFLICT DO NOTHING`` made
PostgreSQL's insert about 40% slower (a speculative insertion per row), for a case the lock
already excludes. Opt-outs are decided by the database too (an anti-join, then a semi-join):
an opted-out person gets a ``skipped`` row with the reason, so HR sees why. So are suppressed
email addresses (bulletin.dispatch.bounces), mandatory or not: one more semi-join.
So is each person's text: a CASE over their language picks the language of the text they get
and its version number (bulletin.dispatch.translations.text_columns), recorded on the row.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import (
    CharField,
    DateTimeField,
    Exists,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.expressions import BaseExpression

from bulletin.dispatch import translations
from bulletin.dispatch.audience import audience_of, reminded_people
from bulletin.dispatch.holding import hold_outside_windows
from bulletin.dispatch.ledger import orders
from bulletin.domain.models import (
    Channel,
    ChannelOptOut,
    Delivery,
    DeliveryState,
    Employee,
    Occurrence,
    OccurrenceState,
    Place,
    Suppression,
    Tallied,
    Tally,
)

log = logging.getLogger(__name__)


def fan_out(occurrence: Occurrence, now: datetime) -> int:
    """Create the occurrence's deliveries (a snapshot of the audience now); returns how many."""
    announcement = occurrence.announcement
    people, places = _audience(occurrence)
    channels = announcement.channels if occurrence.channels is None else occurrence.channels
    with transaction.atomic():
        if not _still_planned(occurrence):
            # Fanned out by a racing tick, or cancelled meanwhile: nothing to add.
            log.info("occurrence no longer planned", extra={"occurrence_id": occurrence.pk})
            done = Occurrence.objects.filter(pk=occurrence.pk, state=OccurrenceState.FANNED_OUT)
            if done.exists():  # a second copy refused, not a cancellation
                Tally.add(Tallied.REPEATED_FAN_OUT)
            return Delivery.objects.filter(occurrence=occurrence).count()
        # The rows each insert reports are all the occurrence has: it had none while planned.
        count = sum(_insert_people(people, occurrence, c, None, now) for c in channels)
        count += sum(_insert_place(place, people, occurrence, now) for place in places)
        hold_outside_windows(occurrence, now)
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


def _audience(occurrence: Occurrence) -> tuple[QuerySet[Employee], list[Place]]:
    """The people and places it goes to: a reminder to people only (see reminders.py)."""
    announcement = occurrence.announcement
    if translations.asked_again(occurrence):
        return translations.people_asked_again(occurrence), []
    if occurrence.reminder_of_id is not None:
        return reminded_people(occurrence), []
    if announcement.per_recipient_zone:
        return audience_of(announcement).filter(timezone=occurrence.zone), []
    return audience_of(announcement), list(announcement.places.filter(active=True))


def _still_planned(occurrence: Occurrence) -> bool:
    """Lock the occurrence for this fan-out; False if another one already did it.

    On PostgreSQL a racing fan-out waits here for the first to commit, then sees it fanned out;
    on SQLite the IMMEDIATE transaction already lets only one writer in at a time.
    """
    planned = Occurrence.objects.select_for_update().filter(
        pk=occurrence.pk, state=OccurrenceState.PLANNED
    )
    return bool(list(planned.values_list("pk", flat=True)))


def _insert_place(
    place: Place, people: QuerySet[Employee], occurrence: Occurrence, now: datetime
) -> int:
    if place.per_person:
        return _insert_people(people, occurrence, place.channel, place.pk, now)
    # A place's members share one text: the default.
    default = translations.default_of(occurrence)
    text = (default, translations.sent_ids(occurrence).get(default))
    orders.create_one(occurrence.pk, place.pk, place.channel, now, text)
    return 1


def _insert_people(
    people: QuerySet[Employee],
    occurrence: Occurrence,
    channel: str,
    place_id: int | None,
    now: datetime,
) -> int:
    """Pending rows for the audience; ``skipped`` rows, with the reason, for those opted out
    and, on email, for suppressed addresses. Returns how many rows it inserted."""
    reasons = _reasons_to_skip(channel, occurrence.announcement.mandatory)
    # Set-based statements, each a plain conjunction of EXISTS and NOT EXISTS: PostgreSQL turns
    # those into hashed semi- and anti-joins. NOT (EXISTS … OR EXISTS …) it cannot: it probed
    # the suppressions once per person, and the plan's estimated cost set off JIT compilation,
    # 0.2 s of a 100k fan-out (measured: fan-out 0.83x of COPY, against 1.07x before).
    staying = people.filter(*(~skipped for skipped, _ in reasons))
    count = _insert_rows(staying, occurrence, channel, place_id, now, DeliveryState.PENDING, "")
    for number, (skipped, reason) in enumerate(reasons):
        # Each person once: the first reason that holds is theirs.
        theirs = people.filter(skipped, *(~earlier for earlier, _ in reasons[:number]))
        state = DeliveryState.SKIPPED
        count += _insert_rows(theirs, occurrence, channel, place_id, now, state, reason)
    return count


def _reasons_to_skip(channel: str, mandatory: bool) -> list[tuple[Exists, str | BaseExpression]]:
    """Why someone gets a ``skipped`` row on ``channel``, in order, with the reason each row
    gives. A mandatory announcement ignores opt-outs, not suppressions: the address does not
    work. The inbox has neither."""
    reasons: list[tuple[Exists, str | BaseExpression]] = []
    if not mandatory and channel != Channel.INAPP:
        opted_out = ChannelOptOut.objects.filter(employee=OuterRef("pk"), channel=channel)
        reasons.append((Exists(opted_out), f"opted out of {channel}"))
    if channel == Channel.EMAIL:
        # The address as it is now: an employee whose email changed since it bounced is not
        # suppressed. Each skipped row says why its own address was (Suppression.reason).
        active = Suppression.objects.filter(address=OuterRef("email"), lifted_at__isnull=True)
        reasons.append((Exists(active), Subquery(active.values("reason")[:1])))
    return reasons


def _insert_rows(
    people: QuerySet[Employee],
    occurrence: Occurrence,
    channel: str,
    place_id: int | None,
    now: datetime,
    state: DeliveryState,
    reason: str | BaseExpression,
) -> int:
    text: CharField[str, str] = CharField()
    error = Value(reason, output_field=text) if isinstance(reason, str) else reason
    number: IntegerField[int, int] = IntegerField()
    stamp: DateTimeField[datetime, datetime] = DateTimeField()
    # Each person's text: a CASE over their language, evaluated by the database per row.
    language, version = translations.text_columns(occurrence)
    rows = (
        people.order_by()
        .annotate(
            new_occurrence=Value(occurrence.pk, output_field=number),
            new_place=Value(place_id, output_field=number),
            new_channel=Value(channel, output_field=text),
            new_state=Value(state.value, output_field=text),
            new_attempts=Value(0, output_field=number),
            new_due=Value(now, output_field=stamp),
            new_error=error,
            new_created=Value(now, output_field=stamp),
            new_updated=Value(now, output_field=stamp),
            new_language=language,
            new_version=version,
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
            "new_language",
            "new_version",
        )
    )
    # The ledger inserts them (sql.COLUMNS, in this order) and counts them.
    return orders.create(rows.query.sql_with_params(), occurrence.pk, channel, state.value)


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
