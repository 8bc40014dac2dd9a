"""Response bodies, read straight from model rows (resolvers fill the derived members)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django.db.models import Count, QuerySet
from ninja import Field, Schema

from bulletin.dispatch.announcements import latest_version
from bulletin.dispatch.ledger import counts
from bulletin.domain.models import (
    Announcement,
    Delivery,
    DeliveryState,
    Employee,
    Location,
    Occurrence,
)

STATES = [state.value for state in DeliveryState]


class TranslationOut(Schema):
    language: str
    title: str
    body: str
    version: int = Field(description="this language's own version number")
    approved: bool = Field(description="an approval covers this version")


def counts_by_state(rows: QuerySet[Delivery]) -> dict[str, int]:
    """Deliveries per state, every state present (one grouped query)."""
    counts = dict.fromkeys(STATES, 0)
    for row in rows.order_by().values("state").annotate(n=Count("id")):
        counts[row["state"]] = row["n"]
    return counts


def _every_state(found: dict[str, int]) -> dict[str, int]:
    """Kept counts (pruned deliveries included), every state named."""
    return {state: found.get(state, 0) for state in STATES}


class ScheduleOut(Schema):
    kind: str = Field(alias="schedule_kind")
    cron: str
    at_local: str
    at_fold: int | None
    timezone: str
    per_recipient_zone: bool


class AudienceOut(Schema):
    kind: str = Field(alias="audience_kind")
    values: list[str] = Field(alias="audience_values")
    employee_ids: list[int]

    @staticmethod
    def resolve_employee_ids(obj: Announcement) -> list[int]:
        return sorted(obj.recipients.values_list("id", flat=True))


class ApprovalOut(Schema):
    version: int = Field(alias="version.number")
    language: str = Field(alias="version.language", description="the version's language")
    approved_by: str = Field(alias="approved_by.username")
    approved_at: datetime


class AnnouncementSummary(Schema):
    id: int
    title: str
    status: str
    schedule: ScheduleOut
    next_fire_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_schedule(obj: Announcement) -> Announcement:
        return obj


class AnnouncementOut(AnnouncementSummary):
    body: str
    audience: AudienceOut
    channels: list[str]
    places: list[str]
    misfire_grace_minutes: int
    send_late: bool
    mandatory: bool
    requires_ack: bool
    remind_after_days: int | None
    remind_times: int
    working_hours: bool
    created_by: str | None
    version: int | None = Field(description="the current content version")
    language: str = Field(description="the language of title and body (BCP 47)")
    translations: list[TranslationOut] = Field(
        description="its texts in other languages, each at its latest version"
    )
    approvals: list[ApprovalOut]
    deliveries: dict[str, int] = Field(description="deliveries of every occurrence, by state")

    @staticmethod
    def resolve_audience(obj: Announcement) -> Announcement:
        return obj

    @staticmethod
    def resolve_places(obj: Announcement) -> list[str]:
        return [str(place) for place in obj.places.all()]

    @staticmethod
    def resolve_misfire_grace_minutes(obj: Announcement) -> int:
        return int(obj.misfire_grace.total_seconds() // 60)

    @staticmethod
    def resolve_created_by(obj: Announcement) -> str | None:
        return obj.created_by.get_username() if obj.created_by else None

    @staticmethod
    def resolve_version(obj: Announcement) -> int | None:
        version = latest_version(obj)
        return version.number if version else None

    @staticmethod
    def resolve_translations(obj: Announcement) -> list[dict[str, Any]]:
        from bulletin.interfaces.api.translations import out

        return out(obj)

    @staticmethod
    def resolve_approvals(obj: Announcement) -> Any:
        return obj.approvals.select_related("version", "approved_by")

    @staticmethod
    def resolve_deliveries(obj: Announcement) -> dict[str, int]:
        return _every_state(counts.by_state(counts.of_announcements([obj.pk])))


class OccurrenceOut(Schema):
    id: int
    zone: str
    fire_at: datetime
    state: str
    note: str
    version: int | None
    deliveries: dict[str, int] = Field(description="this occurrence's deliveries by state")

    @staticmethod
    def resolve_version(obj: Occurrence) -> int | None:
        return obj.version.number if obj.version else None

    @staticmethod
    def resolve_deliveries(obj: Occurrence) -> dict[str, int]:
        return _every_state(counts.by_state(counts.kept(occurrences=[obj.pk])))


class FireTimeOut(Schema):
    local: datetime = Field(description="wall-clock time in the zone, with its offset")
    utc: datetime
    note: str | None = Field(description="where daylight saving moved or merged a time")


class PreviewOut(Schema):
    zone: str
    fire_times: list[FireTimeOut]


class RetryOut(Schema):
    retried: int
    unknown_left: int = Field(
        description="unknown deliveries not retried (send include_unknown: true to retry them)"
    )


class EmployeeOut(Schema):
    id: int
    email: str
    name: str
    department: str
    location: str = Field(description="the location's name; empty: none")
    timezone: str
    active: bool
    away_until: date | None = Field(description="the last day of their leave, if any")
    slack_user_id: str
    language: str = Field(
        description="BCP 47 tag of the language they read; empty: the organisation's default"
    )
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_location(obj: Employee) -> str:
        return obj.location_id or ""


class LocationOut(Schema):
    id: int
    name: str
    timezone: str
    country: str
    subdivision: str
    working_week: str
    employees: int = Field(description="how many employees are in it")
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_employees(obj: Location) -> int:
        return getattr(obj, "n_employees", None) or obj.employees.count()


class SendNowOut(Schema):
    released: int = Field(description="held deliveries released to be sent now")


class DeliveryOut(Schema):
    id: int
    occurrence_id: int
    announcement_id: int = Field(alias="occurrence.announcement_id")
    fire_at: datetime = Field(alias="occurrence.fire_at")
    recipient: str = Field(description="the employee's email, or the place's name")
    employee_email: str | None
    place: str | None
    channel: str
    state: str = Field(description="'held' while it waits for the recipient's working hours")
    due_at: datetime = Field(description="when it goes (for a held one: when the window opens)")
    hold_reason: str | None = Field(description="why it is held (e.g. weekend, a holiday)")
    attempts: int
    last_error: str
    sent_at: datetime | None

    @staticmethod
    def resolve_hold_reason(obj: Delivery) -> str | None:
        return obj.hold_reason or None

    @staticmethod
    def resolve_recipient(obj: Delivery) -> str:
        return obj.employee.email if obj.employee else str(obj.place)

    @staticmethod
    def resolve_employee_email(obj: Delivery) -> str | None:
        return obj.employee.email if obj.employee else None

    @staticmethod
    def resolve_place(obj: Delivery) -> str | None:
        return str(obj.place) if obj.place else None
