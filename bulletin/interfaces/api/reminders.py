"""``POST /occurrences/{id}/reminders``: remind the people an occurrence reached who have not
acknowledged it (bulletin.dispatch.reminders).

The ``Idempotency-Key`` header is required: the same key makes the same one reminder, so a
client that retries after a timeout sends it once (201 the first time, 200 with the same
reminder after). A different key is a new reminder.
"""

from __future__ import annotations

from typing import Annotated, Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Header, Router, Schema, Status

from bulletin.dispatch.reminders import KEY_LENGTH, ReminderRefused, remind
from bulletin.domain.models import Occurrence
from bulletin.interfaces.api.auth import ANNOUNCEMENTS_WRITE, needs
from bulletin.interfaces.api.common import found
from bulletin.interfaces.api.errors import Problems, problem
from bulletin.interfaces.api.schemas import replies

router = Router(tags=["reminders"])
KEY_EXAMPLE = "reminder-2026-12-07"
KEY_TEXT = "Names this request: the same key makes the same one reminder (1 to 64 characters)."


class ReminderIn(Schema):
    # Checked by the service (a 422 naming ``channels``), so an unknown id is a 404 first.
    channels: list[str] = Field(
        default_factory=list, max_length=3, description="Person channels: email, slack, inapp."
    )


class ReminderOut(Schema):
    occurrence_id: int = Field(description="The reminder's own occurrence.")
    reminder_of: int
    channels: list[str]
    deliveries: int = Field(
        description="Deliveries it made: one per person and channel (opted out: skipped)."
    )
    created: bool = Field(description="False: this Idempotency-Key's reminder already existed.")


def _out(reminder: Occurrence, created: bool) -> dict[str, Any]:
    return {
        "occurrence_id": reminder.pk,
        "reminder_of": reminder.reminder_of_id,
        "channels": reminder.channels or [],
        "deliveries": reminder.delivery_count or 0,
        "created": created,
    }


@router.post(
    "/{int:id}/reminders",
    response=replies({200: ReminderOut, 201: ReminderOut}, 400, 404),
    **needs(ANNOUNCEMENTS_WRITE, "schedule_announcement", example={"channels": ["email", "inapp"]}),
)
def create_reminder(
    request: HttpRequest,
    id: int,
    body: ReminderIn,
    # Checked here, after the occurrence is found: an unknown id is a 404 whatever else.
    key: Annotated[
        str, Header(alias="Idempotency-Key", description=KEY_TEXT, example=KEY_EXAMPLE)
    ] = "",
) -> Any:
    """Remind whoever this occurrence reached (sent, any channel) and has not acknowledged,
    over ``channels``. Needs the ``Idempotency-Key`` header (1 to 64 characters)."""
    occurrence = found(Occurrence.objects.select_related("announcement", "reminder_of"), id)
    key = key.strip()
    if not key or len(key) > KEY_LENGTH:
        message = f"the Idempotency-Key header is required (1 to {KEY_LENGTH} characters)"
        raise Problems([problem("Idempotency-Key", message)])
    try:
        made = remind(occurrence, body.channels, key, timezone.now(), request.user)
    except ReminderRefused as exc:
        raise Problems([problem(exc.field, str(exc))]) from None
    return Status(201 if made.created else 200, _out(made.occurrence, made.created))
