"""Checking and scheduling announcements: the one path the admin, the CLI and the API share.

Everything is validated when the announcement is scheduled, never at send time: a title with a
line break, a cron expression that cannot fire or a one-off time that is ambiguous is refused
with the field's name, and nothing is written.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from bulletin.channels import TRANSPORTS
from bulletin.dispatch.ledger import orders
from bulletin.dispatch.planning import rule_of, schedule_of
from bulletin.dispatch.reminders import MAX_REMIND_AFTER_DAYS, MAX_REMIND_TIMES
from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    AnnouncementVersion,
    AudienceKind,
    Delivery,
    DeliveryState,
    Occurrence,
    OccurrenceState,
    Place,
    ScheduleKind,
)
from bulletin.scheduling.planner import plan
from bulletin.scheduling.rules import (
    CronRule,
    FireTime,
    OneOffRule,
    ScheduleError,
    fire_times,
    parse_zone,
    resolve_one_off,
)

log = logging.getLogger(__name__)

# The longest department or location name an audience may name (as Employee's columns allow).
MAX_AUDIENCE_NAME = 100

# Channels that only post to places; a person is reached through email, Slack or the inbox.
PLACE_ONLY = ("teams", "webhook")

LOCAL_FORMAT = "YYYY-MM-DDTHH:MM"

# A day's margin at each end of the calendar, so that no zone's offset takes a time past year 1
# or 9999 (where datetime overflows).
EARLIEST_DAY, LATEST_DAY = date(1, 1, 2), date(9999, 12, 30)


def parse_local(value: str) -> datetime:
    """A naive local date-time from ``YYYY-MM-DDTHH:MM`` (seconds allowed, offsets refused)."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ScheduleError(f"'{value}' is not a local date-time ({LOCAL_FORMAT})") from None
    if parsed.tzinfo is not None:
        raise ScheduleError(
            f"'{value}' carries a UTC offset; give the local wall-clock time and a zone instead"
        )
    if not EARLIEST_DAY <= parsed.date() <= LATEST_DAY:
        raise ScheduleError(f"'{value}' must be between {EARLIEST_DAY} and {LATEST_DAY}")
    return parsed.replace(second=0, microsecond=0)


def validate(
    announcement: Announcement,
    now: datetime | None = None,
    places: Sequence[Place] | None = None,
) -> None:
    """Raise ValidationError naming each bad field; clean the schedule and audience fields in
    place.

    ``places`` are the places it will post to (default: those already saved with it).
    """
    if places is None:
        places = list(announcement.places.all()) if announcement.pk else []
    errors: dict[str, list[str]] = {}
    try:
        # The zone and one-off time are checked below with messages a person can act on; the
        # database constraint on the zone still holds, but its own message would only repeat it.
        announcement.full_clean(
            exclude=["recipients", "planned_until", "next_fire_at", "at_local"],
            validate_constraints=False,
        )
    except ValidationError as exc:
        errors.update(exc.message_dict)
    problems = [
        *_schedule_problems(announcement, now or timezone.now()),
        *_audience_problems(announcement),
        *_channel_problems(announcement, places),
        *_reminder_problems(announcement),
    ]
    for field, message in problems:
        known = errors.setdefault(field, [])
        if message not in known:  # the field validator may have said it already
            known.append(message)
    if errors:
        raise ValidationError(errors)


def _reminder_problems(announcement: Announcement) -> Iterable[tuple[str, str]]:
    """Automatic reminders (bulletin.dispatch.reminders): only for an announcement that asks
    to be acknowledged, every 1 to 30 days, at most 5 times (a bound, so the tick's look-back
    stays bounded too)."""
    days, times = announcement.remind_after_days, announcement.remind_times or 0
    if not announcement.requires_ack and (days or times):
        yield "remind_after_days", "reminders are for announcements that ask to be acknowledged"
    if days is not None and not 1 <= days <= MAX_REMIND_AFTER_DAYS:
        yield "remind_after_days", f"remind after 1 to {MAX_REMIND_AFTER_DAYS} days"
    if not 0 <= times <= MAX_REMIND_TIMES:
        yield "remind_times", f"at most {MAX_REMIND_TIMES} automatic reminders"
    if times and days is None:
        yield "remind_after_days", "say after how many days to remind"


def _schedule_problems(announcement: Announcement, now: datetime) -> Iterable[tuple[str, str]]:
    zone = None
    if not announcement.per_recipient_zone:
        try:
            zone = parse_zone(announcement.timezone)
        except ScheduleError as exc:
            yield "timezone", str(exc)
    try:
        if announcement.schedule_kind == ScheduleKind.CRON:
            announcement.cron = CronRule(announcement.cron).expr
        elif announcement.schedule_kind == ScheduleKind.ONCE:
            yield from _one_off_problems(announcement, zone, now)
    except ScheduleError as exc:
        yield ("cron" if announcement.schedule_kind == ScheduleKind.CRON else "at_local"), str(exc)


def _one_off_problems(
    announcement: Announcement, zone: object, now: datetime
) -> Iterable[tuple[str, str]]:
    at = parse_local(announcement.at_local)
    announcement.at_local = at.isoformat(timespec="minutes")
    if zone is not None:
        instant = resolve_one_off(OneOffRule(at, fold=announcement.at_fold), zone)  # type: ignore[arg-type]
        if instant <= now:
            yield "at_local", f"{announcement.at_local} in {announcement.timezone} is in the past"


def _channel_problems(
    announcement: Announcement, places: Sequence[Place]
) -> Iterable[tuple[str, str]]:
    if not announcement.channels and not places:
        yield "channels", "choose at least one channel or place"
    for channel in announcement.channels:
        if channel in PLACE_ONLY:
            yield "channels", f"{channel} posts to places: choose a {channel} place instead"
        elif channel not in TRANSPORTS:
            known = ", ".join(sorted(set(TRANSPORTS) - set(PLACE_ONLY)))
            yield "channels", f"unknown channel '{channel}'; choose from {known}"
    if inactive := [str(place) for place in places if not place.active]:
        yield "places", f"inactive place(s): {', '.join(inactive)}"
    if places and announcement.per_recipient_zone:
        yield (
            "places",
            "places have no time zone of their own: choose one zone, not each recipient's",
        )


def _audience_problems(announcement: Announcement) -> Iterable[tuple[str, str]]:
    """Department and location audiences name at least one of them: names are trimmed and
    de-duplicated in place (first spelling kept); other audiences keep no names."""
    kind = announcement.audience_kind
    if kind not in (AudienceKind.DEPARTMENT, AudienceKind.LOCATION):
        announcement.audience_values = []
        return
    raw = announcement.audience_values
    if not isinstance(raw, list) or not all(isinstance(name, str) for name in raw):
        yield "audience_values", f"give the {kind} names as a list of text"
        return
    names = list(dict.fromkeys(name.strip() for name in raw if name.strip()))
    announcement.audience_values = names
    if not names:
        yield "audience_values", f"name at least one {kind} this announcement is for"
    for name in names:
        if len(name) > MAX_AUDIENCE_NAME:
            yield (
                "audience_values",
                f"the {kind} '{name[:40]}…' is longer than {MAX_AUDIENCE_NAME} characters",
            )


def schedule(
    announcement: Announcement,
    now: datetime | None = None,
    places: Sequence[Place] | None = None,
) -> Announcement:
    """Validate and start (or restart) planning. Past fire times are never planned again."""
    now = now or timezone.now()
    validate(announcement, now, places)
    with transaction.atomic():
        if announcement.pk is None:
            announcement.save()  # a per-person audience needs the row before its zones are known
        if places is not None:
            announcement.places.set(places)
        snapshot_version(announcement)
        announcement.status = AnnouncementStatus.SCHEDULED
        announcement.planned_until = max(announcement.planned_until or now, now)
        cursor = announcement.planned_until
        announcement.next_fire_at = plan(schedule_of(announcement), cursor, cursor).next_fire_at
        announcement.save()
    log.info(
        "announcement scheduled",
        extra={"announcement_id": announcement.pk, "next_fire_at": str(announcement.next_fire_at)},
    )
    return announcement


def upcoming(announcement: Announcement, count: int = 10) -> list[FireTime]:
    """The next fire times in the announcement's zone (the first recipient zone if per-person)."""
    zones = schedule_of(announcement).zones or ("UTC",)
    after = max(announcement.planned_until or timezone.now(), timezone.now())
    return list(fire_times(rule_of(announcement), parse_zone(zones[0]), after, limit=count))


def latest_version(announcement: Announcement) -> AnnouncementVersion | None:
    """The default language's latest version (translations: ``latest_versions``)."""
    own = announcement.versions.filter(language=announcement.language)
    return own.order_by("-number").first()


def latest_versions(announcement: Announcement) -> dict[str, AnnouncementVersion]:
    """Every language's latest version, withdrawn translations' markers included (approval
    covers them): one query, an announcement has a handful of versions per language."""
    latest: dict[str, AnnouncementVersion] = {}
    for version in announcement.versions.order_by("language", "-number"):
        latest.setdefault(version.language, version)
    return latest


def snapshot_version(announcement: Announcement, by: Any = None) -> AnnouncementVersion:
    """The version occurrences planned from now on will send: a new one if the content
    changed since the last, else the last."""
    latest = latest_version(announcement)
    if latest and (latest.title, latest.body) == (announcement.title, announcement.body):
        return latest
    return AnnouncementVersion.objects.create(
        announcement=announcement,
        language=announcement.language,
        number=latest.number + 1 if latest else 1,
        title=announcement.title,
        body=announcement.body,
        created_by=by if getattr(by, "pk", None) else None,
    )


def pause(announcement: Announcement) -> None:
    set_status(announcement, AnnouncementStatus.PAUSED)


def cancel(announcement: Announcement) -> None:
    """Stop planning and withdraw what has not started sending; claimed sends still finish."""
    with transaction.atomic():
        set_status(announcement, AnnouncementStatus.CANCELLED)
        Occurrence.objects.filter(announcement=announcement, state=OccurrenceState.PLANNED).update(
            state=OccurrenceState.CANCELLED
        )
        waiting = Delivery.objects.filter(occurrence__announcement=announcement)
        states = (DeliveryState.PENDING, DeliveryState.HELD)
        skipped = orders.skip(waiting, states, "announcement cancelled", timezone.now())
    log.info(
        "pending deliveries skipped",
        extra={"announcement_id": announcement.pk, "skipped": skipped},
    )


def set_status(announcement: Announcement, status: AnnouncementStatus) -> None:
    # Occurrences that fall while paused are not planned; resuming (schedule) starts from now.
    Announcement.objects.filter(pk=announcement.pk).update(status=status, next_fire_at=None)
    announcement.status, announcement.next_fire_at = status, None
    log.info(f"announcement {status.value}", extra={"announcement_id": announcement.pk})
