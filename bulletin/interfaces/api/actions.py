"""What people do to an announcement: schedule, approve, pause, resume, cancel, retry, and
send now what waits for working hours.

Each is one call into bulletin.dispatch.lifecycle, which checks the role (403 with its
reason), refuses a wrong state (409) and records the audit event.
"""

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from ninja import Router

from bulletin.dispatch import lifecycle
from bulletin.domain.models import Announcement, Delivery, DeliveryState
from bulletin.interfaces.api import examples
from bulletin.interfaces.api.auth import ANNOUNCEMENTS_WRITE, needs
from bulletin.interfaces.api.common import found
from bulletin.interfaces.api.outputs import AnnouncementOut, RetryOut, SendNowOut
from bulletin.interfaces.api.schemas import RetryIn, replies

router = Router(tags=["announcements"])
ANSWERS = replies({200: AnnouncementOut}, 404, 409)
SCHEDULE = needs(ANNOUNCEMENTS_WRITE, "schedule_announcement")


def _act(request: HttpRequest, id: int, action: Callable[[Announcement, Any], object]) -> Any:
    item = found(Announcement.objects.all(), id)
    action(item, request.user)
    item.refresh_from_db()
    return item


@router.post("/{int:id}/schedule", response=ANSWERS, **SCHEDULE)
def schedule(request: HttpRequest, id: int) -> Any:
    """Schedule it or, when approval is required and this version is not approved, submit it
    for approval (status pending_approval)."""
    return _act(request, id, lifecycle.submit)


@router.post(
    "/{int:id}/approve",
    response=ANSWERS,
    **needs(ANNOUNCEMENTS_WRITE, "approve_announcement"),
)
def approve(request: HttpRequest, id: int) -> Any:
    """Approve the current version, which schedules it. Nobody approves their own (403)."""
    return _act(request, id, lifecycle.approve)


@router.post("/{int:id}/pause", response=ANSWERS, **SCHEDULE)
def pause(request: HttpRequest, id: int) -> Any:
    """Stop planning; what falls due while paused is not sent later."""
    return _act(request, id, lifecycle.pause)


@router.post("/{int:id}/resume", response=ANSWERS, **SCHEDULE)
def resume(request: HttpRequest, id: int) -> Any:
    """Plan again from now."""
    return _act(request, id, lifecycle.resume)


@router.post("/{int:id}/cancel", response=ANSWERS, **SCHEDULE)
def cancel(request: HttpRequest, id: int) -> Any:
    """Stop for good; pending and held deliveries are skipped, sends already under way finish
    (a finished announcement may still be cancelled while some of its deliveries are held)."""
    return _act(request, id, lifecycle.cancel)


@router.post(
    "/{int:id}/retry",
    response=replies({200: RetryOut}, 400, 404),
    **needs(ANNOUNCEMENTS_WRITE, "retry_delivery", example=examples.RETRY),
)
def retry(request: HttpRequest, id: int, payload: RetryIn) -> dict[str, int]:
    """Send failed deliveries again (of one occurrence, or all). ``unknown`` ones may already
    have arrived: they are retried only with ``"include_unknown": true``."""
    item = found(Announcement.objects.all(), id)
    occurrence = None
    if payload.occurrence_id is not None:
        occurrence = found(item.occurrences.all(), payload.occurrence_id)
    retried = lifecycle.retry(
        item, request.user, occurrence=occurrence, include_unknown=payload.include_unknown
    )
    unknown = Delivery.objects.filter(occurrence__announcement=item, state=DeliveryState.UNKNOWN)
    if occurrence is not None:
        unknown = unknown.filter(occurrence=occurrence)
    return {"retried": retried, "unknown_left": unknown.count()}


@router.post("/{int:id}/send-now", response=replies({200: SendNowOut}, 404), **SCHEDULE)
def send_now(request: HttpRequest, id: int) -> dict[str, int]:
    """Send now, regardless of working hours: its held deliveries go now (recorded in the
    audit log); answers how many. Nothing held: 0."""
    item = found(Announcement.objects.all(), id)
    return {"released": lifecycle.send_now(item, request.user)}
