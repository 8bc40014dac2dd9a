"""Bulletin's ledger: who receives, what is announced, which occurrences exist, what was sent.

Every row that stands for a side effect is uniquely keyed, so inserting it twice is a no-op:
that, not a lock or a "sent" flag checked beforehand, is what makes delivery exactly-once.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import Q

from bulletin.domain.languages import LONGEST_TAG, default_language, validate_language
from bulletin.domain.people import (
    SLACK_REMEMBERED,
    Employee,
    validate_single_line,
    validate_zone,
)
from bulletin.domain.tallies import DeliveryQuerySet, count_saved


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SLACK = "slack", "Slack"
    TEAMS = "teams", "Microsoft Teams"
    WEBHOOK = "webhook", "Webhook"
    INAPP = "inapp", "In-app inbox"


# Channels that reach a person directly; Teams and webhooks reach a place (a webhook place may
# ask for one call per person), and Slack reaches either.
PERSON_CHANNELS = (Channel.EMAIL, Channel.SLACK, Channel.INAPP)
PLACE_CHANNELS = (Channel.SLACK, Channel.TEAMS, Channel.WEBHOOK)


class ChannelOptOut(models.Model):
    """An employee's "not on this channel, please" — honoured unless an announcement is
    mandatory."""

    employee = models.ForeignKey(Employee, on_delete=models.CASCADE, related_name="opt_outs")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "channel opt-out"
        verbose_name_plural = "channel opt-outs"
        constraints = [
            models.UniqueConstraint(fields=["employee", "channel"], name="opt_out_identity"),
        ]

    def __str__(self) -> str:
        return f"{self.employee} opted out of {self.channel}"


class Place(models.Model):
    """Somewhere an announcement can be posted once: a Slack channel, a Teams channel (its
    Workflows webhook), or a webhook endpoint. Configured once by an admin."""

    name = models.CharField(max_length=100, validators=[validate_single_line])
    channel = models.CharField(max_length=16, choices=[(c.value, c.label) for c in PLACE_CHANNELS])
    target = models.CharField(
        max_length=500,
        help_text="Slack: the channel id (C…). Teams: the workflow's webhook URL. "
        "Webhook: the endpoint URL.",
    )
    per_person = models.BooleanField(
        default=False, help_text="Webhook only: one call per recipient instead of one in all."
    )
    # Signing secret (webhook): base64 "whsec_…". The previous one keeps signing alongside the
    # new one until receivers have switched, so a rotation never breaks verification.
    secret = models.CharField(max_length=200, blank=True)
    previous_secret = models.CharField(max_length=200, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["channel", "name"]
        constraints = [
            models.UniqueConstraint(fields=["channel", "name"], name="place_identity"),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.name}"


class AudienceKind(models.TextChoices):
    ALL = "all", "Everyone"
    DEPARTMENT = "department", "Departments"
    LOCATION = "location", "Locations"
    LIST = "list", "Chosen people"


class ScheduleKind(models.TextChoices):
    ONCE = "once", "Once, at a local date-time"
    CRON = "cron", "Recurring (cron expression)"


class AnnouncementStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PENDING_APPROVAL = "pending_approval", "Waiting for approval"
    SCHEDULED = "scheduled", "Scheduled"
    PAUSED = "paused", "Paused"
    CANCELLED = "cancelled", "Cancelled"
    FINISHED = "finished", "Finished"


class Announcement(models.Model):
    title = models.CharField(max_length=200, validators=[validate_single_line])
    body = models.TextField(help_text="Markdown. {{ name }} and {{ first_name }} are personalised.")
    audience_kind = models.CharField(
        max_length=16, choices=AudienceKind.choices, default=AudienceKind.ALL
    )
    # A rule, not a list of people: whoever is in one of these departments (or locations) when
    # an occurrence fans out is reached, so later joiners are included.
    audience_values = models.JSONField(
        default=list,
        blank=True,
        help_text="The department or location names (a list), for those audiences; "
        "anyone in any one of them is reached.",
    )
    recipients = models.ManyToManyField(Employee, blank=True, related_name="+")
    channels = models.JSONField(
        default=list, blank=True, help_text="Channels that reach each person."
    )
    places = models.ManyToManyField(Place, blank=True, related_name="announcements")
    mandatory = models.BooleanField(
        default=False, help_text="Ignore employees' channel opt-outs (e.g. safety notices)."
    )
    requires_ack = models.BooleanField(
        default=False, help_text="Employees are asked to acknowledge it (inbox, email button)."
    )
    # Reminders sent by themselves to whoever has not acknowledged: every ``remind_after``
    # (days) after an occurrence, at most ``remind_times`` times (0: only HR's "Remind them").
    remind_after_days = models.PositiveSmallIntegerField(null=True, blank=True)
    remind_times = models.PositiveSmallIntegerField(default=0, db_default=0)
    # Who the email is from: one of BULLETIN_SENDERS ("": DEFAULT_FROM_EMAIL).
    # db_default, here and below: rows written by raw SQL (tests, benchmarks, an operator's
    # script) that do not name the newer columns still get their defaults.
    sender = models.CharField(
        max_length=254,
        blank=True,
        default="",
        db_default="",
        help_text="The email's From, one of the allowed senders.",
    )
    working_hours = models.BooleanField(
        default=False,
        help_text="Deliver to each person within their working hours: outside them (nights, "
        "weekends, public holidays, leave) it waits for their next working window. "
        "Mandatory announcements never wait.",
    )
    # The language title and body are written in: its texts are the default versions, and
    # whoever has no translation of their own reads them. Translations: AnnouncementVersion
    # rows of other languages (bulletin.dispatch.translations).
    language = models.CharField(
        max_length=LONGEST_TAG,
        default=default_language,
        db_default="en",
        validators=[validate_language],
        help_text="The language of the title and body above (BCP 47).",
    )
    schedule_kind = models.CharField(max_length=8, choices=ScheduleKind.choices)
    cron = models.CharField(max_length=100, blank=True)
    at_local = models.CharField(
        max_length=16, blank=True, help_text="One-off local wall-clock time, YYYY-MM-DDTHH:MM."
    )
    at_fold = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        choices=[(0, "the first (before clocks go back)"), (1, "the second (after)")],
        help_text="For a one-off time that happens twice when clocks go back: which one.",
    )
    timezone = models.CharField(max_length=64, blank=True, validators=[validate_zone])
    per_recipient_zone = models.BooleanField(
        default=False, help_text="Fire at this wall-clock time in each recipient's own zone."
    )
    misfire_grace = models.DurationField(default=timedelta(hours=1))
    send_late = models.BooleanField(
        default=False, help_text="After downtime, send occurrences older than the grace anyway."
    )
    status = models.CharField(
        max_length=16, choices=AnnouncementStatus.choices, default=AnnouncementStatus.DRAFT
    )
    # The planner's cursor: every fire time up to here has its occurrence row. It lives in the
    # data so that a clock going backwards, or a second planner, can never re-fire anything.
    planned_until = models.DateTimeField(null=True, blank=True)
    next_fire_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("schedule_announcement", "Can schedule, pause, resume and cancel announcements"),
            ("approve_announcement", "Can approve announcements written by others"),
            ("retry_delivery", "Can retry failed or unknown deliveries"),
        ]
        indexes = [
            # planner: status='scheduled' AND next_fire_at <= now ORDER BY next_fire_at
            models.Index(
                fields=["next_fire_at"],
                name="announcement_due_idx",
                condition=Q(status="scheduled"),
            ),
            # automatic reminders (dispatch/reminders.py): remind_times > 0, every tick
            models.Index(
                fields=["id"], name="announcement_reminding_idx", condition=Q(remind_times__gt=0)
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(per_recipient_zone=True) | ~Q(timezone=""),
                name="announcement_has_zone",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class OccurrenceState(models.TextChoices):
    PLANNED = "planned", "Planned (fan-out pending)"
    FANNED_OUT = "fanned_out", "Fanned out"
    MISSED = "missed", "Missed (past its grace)"
    CANCELLED = "cancelled", "Cancelled before fan-out"


class Installation(models.Model):
    """This installation's identity: one row, made by the first migrate.

    ``key`` is 128 random bits (hex). Every idempotency key a receiver sees contains it, so a
    second installation, or this one's database rebuilt from scratch, never repeats a key that
    receivers were told to drop as a duplicate.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    key = models.CharField(max_length=32, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(id=1), name="one_installation")]

    def __str__(self) -> str:
        return f"installation {self.key}"


def new_installation_key() -> str:
    return secrets.token_hex(16)


def installation_id() -> str:
    """The installation's key, made now if the row is missing (a flushed test database)."""
    found = Installation.objects.filter(pk=1).values_list("key", flat=True).first()
    if found:
        return found
    try:
        with transaction.atomic():
            return Installation.objects.create(pk=1, key=new_installation_key()).key
    except IntegrityError:  # another process made it first
        return Installation.objects.values_list("key", flat=True).get(pk=1)


class Occurrence(models.Model):
    announcement = models.ForeignKey(
        Announcement, on_delete=models.CASCADE, related_name="occurrences"
    )
    zone = models.CharField(max_length=64)
    fire_at = models.DateTimeField()
    # The content this occurrence sends: fixed when it is planned, so an edit changes only
    # occurrences planned after it, and a delivery never changes what it said.
    version = models.ForeignKey(
        "bulletin.AnnouncementVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="occurrences",
    )
    # Every text it sends, frozen with ``version`` when it is planned: {language: the
    # AnnouncementVersion id}, the default's (``version``) included. NULL (planned before
    # languages): only ``version``.
    translations = models.JSONField(null=True, blank=True, editable=False)
    state = models.CharField(max_length=16, choices=OccurrenceState.choices)
    delivery_count = models.PositiveIntegerField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)
    # The installation id its deliveries' keys contain. "" for occurrences that existed before
    # keys had one (migration 0006): a delivery keeps its key for life, so a resend after the
    # upgrade still carries the key the receiver saw first. Raw inserts get "" (db_default).
    key_space = models.CharField(
        max_length=32, blank=True, default=installation_id, db_default="", editable=False
    )
    # A reminder (bulletin.dispatch.reminders): an occurrence of its own, to the people its
    # occurrence reached who have not acknowledged, over its own channels. ``reminder_key``
    # names the request that made it (a form's token, an Idempotency-Key, "auto-2"): one
    # reminder per key, however often the request is repeated.
    reminder_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="reminders"
    )
    reminder_key = models.CharField(max_length=64, blank=True, default="", db_default="")
    channels = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-fire_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["announcement", "zone", "fire_at"],
                name="occurrence_identity",
                condition=Q(reminder_of__isnull=True),
            ),
            models.UniqueConstraint(
                fields=["reminder_of", "reminder_key"],
                name="reminder_identity",
                condition=Q(reminder_of__isnull=False),
            ),
        ]
        indexes = [
            # fan-out: state='planned' ORDER BY fire_at
            models.Index(
                fields=["fire_at"], name="occurrence_planned_idx", condition=Q(state="planned")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.announcement_id} @ {self.fire_at:%Y-%m-%d %H:%M}Z ({self.zone})"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    CLAIMED = "claimed", "Claimed"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    UNKNOWN = "unknown", "Unknown (interrupted mid-send)"
    SKIPPED = "skipped", "Skipped"
    # Waiting for its recipient's working window; due_at is when it opens (then pending).
    HELD = "held", "Held for working hours"
    # Sent, then returned: a hard bounce said the address does not work (last_error says why).
    BOUNCED = "bounced", "Bounced"


FINAL_DELIVERY_STATES = (
    DeliveryState.SENT,
    DeliveryState.FAILED,
    DeliveryState.UNKNOWN,
    DeliveryState.SKIPPED,
    DeliveryState.BOUNCED,
)


class Delivery(models.Model):
    # No index of its own: delivery_occurrence_state_idx (occurrence, state) serves every lookup
    # by occurrence, and one index fewer is one fewer to maintain per fanned-out row.
    occurrence = models.ForeignKey(
        Occurrence, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    # The recipient: a person, a place, or a person reached through a place (a webhook that
    # asks for one call per person). Each shape has its own partial unique constraint, so
    # identity stays one row per send whichever it is.
    employee = models.ForeignKey(
        Employee, null=True, blank=True, on_delete=models.PROTECT, related_name="deliveries"
    )
    # Indexed only where set (delivery_place_idx): a fan-out to people would otherwise add a
    # NULL entry per row to an index that no lookup by place can ever use.
    place = models.ForeignKey(
        Place,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="deliveries",
        db_index=False,
    )
    channel = models.CharField(max_length=16, choices=Channel.choices)
    state = models.CharField(
        max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    # ``attempts`` when its current retry budget began: 0, or the count at the last deliberate
    # retry (HR, the API, settle --resend). The policy counts ``attempts - budget_start``;
    # ``attempts`` itself never goes back, as it numbers the Attempt rows (unique per delivery),
    # so a fresh budget keeps the history. Raw fan-out inserts leave it 0 (db_default).
    budget_start = models.PositiveSmallIntegerField(default=0, db_default=0, editable=False)
    due_at = models.DateTimeField()
    # Fencing: an outcome is written only by the holder of the current lease token.
    # NULL, not "", means "no lease": fan-out inserts rows without naming this column.
    lease_token = models.CharField(max_length=32, null=True, blank=True)  # noqa: DJ001
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Why it waited for a working window ("after working hours, weekend"); kept once released,
    # so HR can see why it arrived later. Raw fan-out inserts leave it "" (db_default).
    hold_reason = models.CharField(
        max_length=200, blank=True, default="", db_default="", editable=False
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    # What it says: the language of the text (after fallback) and that language's version
    # number, chosen by fan-out in its INSERT … SELECT. No index: reports group by occurrence.
    language = models.CharField(
        max_length=LONGEST_TAG, blank=True, default="", db_default="", editable=False
    )
    version_number = models.PositiveIntegerField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name = "delivery"
        verbose_name_plural = "deliveries"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["occurrence", "employee", "channel"],
                condition=Q(place__isnull=True),
                name="delivery_identity",
            ),
            models.UniqueConstraint(
                fields=["occurrence", "place", "channel"],
                condition=Q(employee__isnull=True),
                name="delivery_place_identity",
            ),
            models.UniqueConstraint(
                fields=["occurrence", "place", "employee", "channel"],
                condition=Q(employee__isnull=False, place__isnull=False),
                name="delivery_person_via_place_identity",
            ),
            models.CheckConstraint(
                condition=Q(employee__isnull=False) | Q(place__isnull=False),
                name="delivery_has_recipient",
            ),
        ]
        indexes = [
            # claim: state='pending' AND due_at <= now ORDER BY due_at
            models.Index(fields=["due_at"], name="delivery_due_idx", condition=Q(state="pending")),
            # holding.release_opened: state='held' AND due_at <= now
            models.Index(fields=["due_at"], name="delivery_held_idx", condition=Q(state="held")),
            # lease reaper: lease_expires_at < now. Only claimed and sending rows hold a lease;
            # "IS NOT NULL" is a condition SQLite can prove from the comparison, unlike state IN.
            models.Index(
                fields=["lease_expires_at"],
                name="delivery_leased_idx",
                condition=Q(lease_expires_at__isnull=False),
            ),
            # Lists of an occurrence's deliveries by state (the HR detail page, the API's
            # /deliveries?state=, retry and cancel); counts are kept (ledger/counts.py)
            models.Index(fields=["occurrence", "state"], name="delivery_occurrence_state_idx"),
            # deleting a place (PROTECT asks: place_id IN …) and a place's delivery history
            models.Index(
                fields=["place"], name="delivery_place_idx", condition=Q(place__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} ({self.channel}, {self.state})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The ledger moves deliveries in sets and counts each move; one saved on its own (the
        # admin, a fixture) is counted here, in the same transaction.
        was = None if self._state.adding else _state_of(self.pk)
        with transaction.atomic():
            super().save(*args, **kwargs)
            count_saved(self.occurrence_id, self.channel, was, self.state)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        with transaction.atomic():
            count_saved(self.occurrence_id, self.channel, _state_of(self.pk), None)
            return super().delete(*args, **kwargs)

    @property
    def idempotency_key(self) -> str:
        """Loads the occurrence unless it came with the delivery (``select_related``)."""
        return delivery_key(
            self.occurrence.key_space,
            self.occurrence_id,
            self.employee_id,
            self.place_id,
            self.channel,
        )


def _state_of(pk: int | None) -> str | None:
    if pk is None:
        return None
    return Delivery.objects.filter(pk=pk).values_list("state", flat=True).first()


def delivery_key(
    key_space: str, occurrence_id: int, employee_id: int | None, place_id: int | None, channel: str
) -> str:
    """Stable for the life of a delivery: derived from its identity, not from a try.

    ``occurrence.recipient.channel.installation`` (``12.42.email.9f86…``), or without the
    installation part for occurrences planned before keys had one (``key_space`` ""). Only
    digits, letters and dots: it is the local part of an email Message-ID as it stands.
    """
    recipient = [str(employee_id)] if employee_id else []
    if place_id:
        recipient.append(f"p{place_id}")
    key = f"{occurrence_id}.{'.'.join(recipient)}.{channel}"
    return f"{key}.{key_space}" if key_space else key


from bulletin.domain.attempts import Attempt, AttemptOutcome  # noqa: E402
from bulletin.domain.bounces import Bounce, Suppression  # noqa: E402
from bulletin.domain.engagement import Engagement  # noqa: E402
from bulletin.domain.inbox import InboxItem  # noqa: E402
from bulletin.domain.locations import Location  # noqa: E402
from bulletin.domain.paces import ChannelPace  # noqa: E402
from bulletin.domain.records import (  # noqa: E402 - they refer to the models above
    AnnouncementVersion,
    ApiToken,
    Approval,
    AuditEvent,
)
from bulletin.domain.tallies import (  # noqa: E402
    AttemptCount,
    AttemptCountChange,
    DeliveryCount,
    DeliveryCountChange,
    Tallied,
    Tally,
)

__all__ = [
    "SLACK_REMEMBERED",
    "Announcement",
    "AnnouncementStatus",
    "AnnouncementVersion",
    "ApiToken",
    "Approval",
    "Attempt",
    "AttemptCount",
    "AttemptCountChange",
    "AttemptOutcome",
    "AudienceKind",
    "AuditEvent",
    "Bounce",
    "Channel",
    "ChannelOptOut",
    "ChannelPace",
    "Delivery",
    "DeliveryCount",
    "DeliveryCountChange",
    "DeliveryState",
    "Employee",
    "Engagement",
    "InboxItem",
    "Installation",
    "Location",
    "Occurrence",
    "OccurrenceState",
    "Place",
    "ScheduleKind",
    "Suppression",
    "Tallied",
    "Tally",
    "validate_single_line",
    "validate_zone",
]
