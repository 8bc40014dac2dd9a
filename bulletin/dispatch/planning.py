"""The tick: record due occurrences and move each announcement's cursor, idempotently.

Correctness never rests on a tick running once. Occurrence rows are unique on (announcement,
zone, fire_at), so concurrent ticks insert the same rows and the second insert is a no-op; the
cursor moves by compare-and-set, so only one tick advances it and a stale one changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from bulletin.dispatch.audience import audience_zones
from bulletin.dispatch.fanout import fan_out_planned
from bulletin.dispatch.holding import release_opened
from bulletin.dispatch.ledger import counts
from bulletin.dispatch.reminders import remind_automatically
from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    Occurrence,
    OccurrenceState,
    ScheduleKind,
    Tallied,
    Tally,
    installation_id,
)
from bulletin.scheduling.planner import Plan, Schedule, plan
from bulletin.scheduling.rules import CronRule, OneOffRule, Rule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TickResult:
    announcements: int
    occurrences: int
    deliveries: int


def rule_of(announcement: Announcement) -> Rule:
    if announcement.schedule_kind == ScheduleKind.CRON:
        return CronRule(announcement.cron)
    at = datetime.fromisoformat(announcement.at_local)
    strict = not announcement.per_recipient_zone
    return OneOffRule(at, strict=strict, fold=announcement.at_fold)


def schedule_of(announcement: Announcement) -> Schedule:
    return Schedule(
        rule=rule_of(announcement),
        zones=audience_zones(announcement),
        per_recipient=announcement.per_recipient_zone,
        grace=announcement.misfire_grace,
        send_late=announcement.send_late,
    )


# pg_advisory_lock key for "a planner is running" (the bytes of "BULL").
PLANNER_LOCK = 0x42554C4C


@contextmanager
def planner_lock() -> Iterator[bool]:
    """On PostgreSQL, let one planner run at a time; elsewhere always granted.

    Only an optimisation: it saves duplicate work when several beats fire together. Unique
    occurrences and the cursor's compare-and-set keep planning correct without it.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [PLANNER_LOCK])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [PLANNER_LOCK])


def tick(now: datetime | None = None, limit: int = 500) -> TickResult:
    """One planning pass: plan every due announcement, then fan out what was planned."""
    with planner_lock() as acquired:
        if not acquired:
            log.info("another planner holds the planner lock; skipping this tick")
            return TickResult(0, 0, 0)
        return _tick(now or timezone.now(), limit)


def _tick(now: datetime, limit: int) -> TickResult:
    due = list(
        Announcement.objects.filter(
            status=AnnouncementStatus.SCHEDULED, next_fire_at__lte=now
        ).order_by("next_fire_at")[:limit]
    )
    occurrences = sum(_plan_safely(announcement, now) for announcement in due)
    deliveries = fan_out_planned(now)
    remind_safely(now)
    release_opened(now)
    counts.fold()  # what the moves since the last tick changed, into the kept counts
    return TickResult(len(due), occurrences, deliveries)


def remind_safely(now: datetime) -> None:
    # A reminder that cannot be made must not stop the tick: the next one tries again.
    try:
        remind_automatically(now)
    except Exception:
        log.exception("automatic reminders failed")


def _plan_safely(announcement: Announcement, now: datetime) -> int:
    # One broken announcement must not stop every other one from being planned.
    try:
        return plan_announcement(announcement, now)
    except Exception:
        log.exception("planning failed", extra={"announcement_id": announcement.pk})
        return 0


def plan_announcement(announcement: Announcement, now: datetime) -> int:
    """Record the announcement's due occurrences; returns how many this tick recorded.

    The cursor moves first, by compare-and-set, in the same transaction as the inserts: only the
    tick that wins the move records, and a crash between the two leaves neither.
    """
    cursor = announcement.planned_until or now
    result = plan(schedule_of(announcement), cursor, now)
    with transaction.atomic():
        if not _advance(announcement, cursor, result):
            log.info(
                "planner cursor already moved by another tick",
                extra={"announcement_id": announcement.pk},
            )
            if result.occurrences and _moved_by_another_tick(announcement, cursor):
                Tally.add(Tallied.REPEATED_PLANNING, len(result.occurrences))
            return 0
        _record(announcement, result)
    return len(result.occurrences)


def _record(announcement: Announcement, result: Plan) -> None:
    if not result.occurrences:
        return
    # Imported here: translations reads announcements, which reads this module.
    from bulletin.dispatch import translations

    # What each occurrence sends is frozen now: the default text and every translation.
    own = announcement.versions.filter(language=announcement.language)
    version = own.order_by("-number").first()
    texts = translations.frozen(announcement)
    key_space = installation_id()  # once for the batch, not once per row by the default
    rows = [
        Occurrence(
            announcement=announcement,
            version=version,
            translations=texts,
            key_space=key_space,
            zone=planned.zone,
            fire_at=planned.fire_at,
            state=OccurrenceState.MISSED if planned.missed else OccurrenceState.PLANNED,
            note=planned.note,
        )
        for planned in result.occurrences
    ]
    # The unique key still guards the ledger should two cursors ever overlap.
    Occurrence.objects.bulk_create(rows, ignore_conflicts=True)
    for planned in result.occurrences:
        _log_planned(announcement, planned.zone, planned.fire_at, planned.missed)


def _log_planned(announcement: Announcement, zone: str, fire_at: datetime, missed: bool) -> None:
    event = "occurrence missed (past its grace)" if missed else "occurrence planned"
    log.log(
        logging.WARNING if missed else logging.INFO,
        event,
        extra={"announcement_id": announcement.pk, "zone": zone, "fire_at": fire_at.isoformat()},
    )


def _moved_by_another_tick(announcement: Announcement, cursor: datetime) -> bool:
    # Not paused or cancelled meanwhile: the occurrences refused here were a second copy.
    still = Announcement.objects.filter(pk=announcement.pk, status=AnnouncementStatus.SCHEDULED)
    return still.exclude(planned_until=cursor).exists()


def _advance(announcement: Announcement, cursor: datetime, result: Plan) -> bool:
    status = AnnouncementStatus.SCHEDULED if result.next_fire_at else AnnouncementStatus.FINISHED
    moved = Announcement.objects.filter(
        pk=announcement.pk, status=AnnouncementStatus.SCHEDULED, planned_until=cursor
    ).update(planned_until=result.cursor, next_fire_at=result.next_fire_at, status=status)
    if moved and status == AnnouncementStatus.FINISHED:
        log.info("announcement finished", extra={"announcement_id": announcement.pk})
    return bool(moved)
