"""Reminders: the announcement again, to the people an occurrence reached who have not
acknowledged it.

A reminder is an occurrence of its own (``Occurrence.reminder_of``), so it goes through the
ledger like any other: unique deliveries, leases, retries, working hours, opt-outs. Who it
reaches is decided when it fans out, in the same statement as its rows (see
``audience.reminded_people``): whoever acknowledged in between is not reminded. Its readings and
acknowledgements count for the occurrence it reminds of (``engagement.root_of``).

Once per request: the reminder is unique on (occurrence, ``key``). HR's form carries a token
made when the page was drawn, the API an Idempotency-Key, the automatic reminders "auto-N":
a double click, a retried request or two racing ticks make one reminder, and the one that
lost the race is shown the reminder the other made.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AnonymousUser, User
from django.db import IntegrityError, transaction
from django.db.models import Count, Q

from bulletin.dispatch.fanout import fan_out
from bulletin.domain.models import (
    PERSON_CHANNELS,
    Announcement,
    AuditEvent,
    Occurrence,
    OccurrenceState,
)
from bulletin.domain.records import AuditAction

log = logging.getLogger(__name__)

KEY_LENGTH = 64


class ReminderRefused(ValueError):
    """This occurrence cannot be reminded of, or not over these channels (the message says
    which field, for the form, the API and the command line)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Reminder:
    occurrence: Occurrence
    created: bool  # False: this request's reminder already existed (a repeat)


def remind(
    root: Occurrence,
    channels: list[str],
    key: str,
    now: datetime,
    actor: User | AnonymousUser | None = None,
) -> Reminder:
    """The reminder this request (``key``) asks for, made once, fanned out at once."""
    root = _checked(root, channels, key)
    try:
        with transaction.atomic():
            reminder = _create(root, channels, key, now)
            _audit(reminder, root, actor)
    except IntegrityError:  # the same request again, or racing itself
        existing = Occurrence.objects.get(reminder_of=root, reminder_key=key)
        return Reminder(existing, created=False)
    try:
        fan_out(reminder, now)
    except Exception:  # left planned: the next tick fans it out (fan_out_planned)
        log.exception("reminder fan-out failed", extra={"occurrence_id": reminder.pk})
    reminder.refresh_from_db()
    log.info(
        "reminder made",
        extra={
            "occurrence_id": reminder.pk,
            "reminder_of": root.pk,
            "deliveries": reminder.delivery_count,
        },
    )
    return Reminder(reminder, created=True)


def _checked(root: Occurrence, channels: list[str], key: str) -> Occurrence:
    root = root.reminder_of or root  # a reminder of a reminder reminds of the first
    if not root.announcement.requires_ack:
        raise ReminderRefused("occurrence", "this announcement does not ask for acknowledgement")
    if root.state != OccurrenceState.FANNED_OUT:
        raise ReminderRefused("occurrence", "this occurrence has not been sent yet")
    unknown = sorted(set(channels) - {str(c) for c in PERSON_CHANNELS})
    if not channels or unknown:
        allowed = ", ".join(str(c) for c in PERSON_CHANNELS)
        raise ReminderRefused("channels", f"choose channels among {allowed}; got {unknown or []}")
    if not key or len(key) > KEY_LENGTH:
        raise ReminderRefused(
            "key", f"a reminder needs a request key of 1 to {KEY_LENGTH} characters"
        )
    return root


def _create(root: Occurrence, channels: list[str], key: str, now: datetime) -> Occurrence:
    return Occurrence.objects.create(
        announcement=root.announcement,
        zone=root.zone,
        fire_at=now,
        version=root.version,
        translations=root.translations,  # the texts it reminds of, each in its language
        state=OccurrenceState.PLANNED,
        reminder_of=root,
        reminder_key=key,
        channels=sorted(set(channels)),
        note=f"reminder of occurrence {root.pk}",
    )


def _audit(reminder: Occurrence, root: Occurrence, actor: User | AnonymousUser | None) -> None:
    AuditEvent.objects.create(
        action=AuditAction.REMINDED,
        announcement=root.announcement,
        actor=actor if isinstance(actor, User) else None,
        detail={
            "occurrence_id": reminder.pk,
            "reminder_of": root.pk,
            "channels": reminder.channels,
            "key": reminder.reminder_key,
        },
    )


def remind_automatically(now: datetime) -> int:
    """The planner's step: reminders due by their announcement's "remind after N days, at most
    M times". Each is keyed "auto-K", so racing ticks make it once. Returns how many it made."""
    made = 0
    for root, number in _due_automatic(now):
        channels = root.announcement.channels or ["email"]
        people = [c for c in channels if c in {str(p) for p in PERSON_CHANNELS}] or ["inapp"]
        made += remind(root, people, f"auto-{number}", now).created
    return made


def _due_automatic(now: datetime) -> list[tuple[Occurrence, int]]:
    """(occurrence, which reminder) pairs due: only occurrences recent enough to have one
    left (the last is due remind_after_days times remind_times after it fired), so the query
    stays on the occurrences of the last weeks however long the history grows."""
    # announcement_reminding_idx: most installations have none, and a tick finds that in one
    # index probe however many announcements and occurrences there are. Asked first, on its
    # own: as a subquery, SQLite scanned every recent occurrence instead (an idle tick at
    # 100,000 announcements went from 2.9 to 17 ms).
    reminding = list(
        Announcement.objects.filter(
            remind_times__gt=0, requires_ack=True, remind_after_days__isnull=False
        ).values_list("pk", flat=True)
    )
    if not reminding:
        return []
    candidates = (
        Occurrence.objects.filter(
            announcement__in=reminding,
            reminder_of__isnull=True,
            state=OccurrenceState.FANNED_OUT,
            fire_at__gte=now - timedelta(days=_LONGEST_REMINDING_DAYS),
        )
        .select_related("announcement")
        .annotate(automatic_made=Count("reminders", filter=_AUTOMATIC))
        .order_by("fire_at")
    )
    due: list[tuple[Occurrence, int]] = []
    for root in candidates:
        number = root.automatic_made + 1
        days = root.announcement.remind_after_days or 0
        if (
            number <= root.announcement.remind_times
            and root.fire_at + timedelta(days=days * number) <= now
        ):
            due.append((root, number))
    return due


# remind_after_days and remind_times are bounded by the form and API (30 days, 5 times).
MAX_REMIND_AFTER_DAYS, MAX_REMIND_TIMES = 30, 5
_LONGEST_REMINDING_DAYS = MAX_REMIND_AFTER_DAYS * MAX_REMIND_TIMES + 1


# The reminders the tick made (keys "auto-1", "auto-2"…), counted beside each candidate.
_AUTOMATIC = Q(reminders__reminder_key__startswith="auto-")
