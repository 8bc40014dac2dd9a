"""What HR does to an announcement — create, edit, submit, approve, pause, resume, cancel,
retry, test-send — each checked against the actor's role and recorded in the audit log.

The admin, the HR screens and the REST API all come through here, so a rule (no
self-approval; unknown deliveries are retried only when the risk is confirmed) holds everywhere.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from bulletin.channels.base import Message, Recipient, TransportError
from bulletin.channels.email import EmailTransport
from bulletin.channels.render import render_html, render_text
from bulletin.conf import options
from bulletin.dispatch import announcements, holding, translations
from bulletin.dispatch.ledger import orders
from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    AuditEvent,
    Delivery,
    DeliveryState,
    Employee,
    Occurrence,
    Place,
    installation_id,
)
from bulletin.domain.records import AuditAction

log = logging.getLogger(__name__)

EDITABLE = (
    AnnouncementStatus.DRAFT,
    AnnouncementStatus.PENDING_APPROVAL,
    AnnouncementStatus.SCHEDULED,
    AnnouncementStatus.PAUSED,
)
SUBMITTABLE = (AnnouncementStatus.DRAFT, AnnouncementStatus.PENDING_APPROVAL)
RETRYABLE = (DeliveryState.FAILED, DeliveryState.UNKNOWN)


def require(user: Any, permission: str) -> None:
    if not user.has_perm(f"bulletin.{permission}"):
        raise PermissionDenied(f"your role does not allow this ({permission})")


def audit(actor: Any, action: str, announcement: Announcement | None, **detail: Any) -> None:
    """Record who did what; ``actor`` None is the command line (an operator, not a user)."""
    AuditEvent.objects.create(actor=actor, action=action, announcement=announcement, detail=detail)
    log.info(
        f"announcement {action}",
        extra={
            "announcement_id": getattr(announcement, "pk", None),
            "actor_id": getattr(actor, "pk", None),
        },
    )


# How the audit log names an operator at the command line (``actor`` None, not a user).
CONSOLE = {"via": "command line"}


def create(
    announcement: Announcement,
    by: Any,
    places: Sequence[Place] = (),
    recipients: Sequence[Employee] = (),
) -> Announcement:
    """Save a draft (checked as if it were to be scheduled, so mistakes surface early), with
    the chosen people of a "list" audience, named in the audit."""
    require(by, "add_announcement")
    return _create(announcement, by, places, recipients)


def _create(
    announcement: Announcement,
    by: Any,
    places: Sequence[Place],
    recipients: Sequence[Employee] = (),
    **detail: Any,
) -> Announcement:
    announcements.validate(announcement, places=places)
    with transaction.atomic():
        announcement.status, announcement.created_by = AnnouncementStatus.DRAFT, by
        announcement.save()
        announcement.places.set(places)
        if recipients:
            announcement.recipients.set(recipients)
            detail["recipients"] = sorted(person.pk for person in recipients)
        version = announcements.snapshot_version(announcement, by)
        audit(by, AuditAction.CREATED, announcement, version=version.number, **detail)
    return announcement


def announce_from_console(announcement: Announcement, places: Sequence[Place] = ()) -> Announcement:
    """Create and submit for an operator at the command line (no user, as send_now's console
    twin): the same steps and audit as HR's, so with approval required it waits for an
    approver like anything else. The operator has the shell, not a role: no permission check,
    but never a way around the four-eyes rule."""
    with transaction.atomic():
        _create(announcement, None, places, (), **CONSOLE)
        return _submit(announcement, None, **CONSOLE)


def edit(
    announcement: Announcement,
    by: Any,
    places: Sequence[Place] | None = None,
    recipients: Sequence[Employee] | None = None,
    **changes: Any,
) -> Announcement:
    """Change an announcement. New content is a new version: occurrences planned from now on
    send it; what was planned or sent before keeps the version it had.

    ``recipients`` are the chosen people of a "list" audience (None: unchanged); the audit
    names who was added and who removed, as it names every field that changed.
    """
    require(by, "change_announcement")
    if announcement.status not in EDITABLE:
        raise ValidationError(
            f"a {announcement.get_status_display().lower()} announcement cannot be edited"
        )
    for field, value in changes.items():
        setattr(announcement, field, value)
    announcements.validate(announcement, places=places)
    with transaction.atomic():
        announcement.save()
        if places is not None:
            announcement.places.set(places)
        # Before rescheduling: a per-person schedule takes its zones from the new people.
        people = _choose_people(announcement, recipients)
        version = announcements.snapshot_version(announcement, by)
        fields = sorted([*changes, *(["recipients"] if people else [])])
        audit(by, AuditAction.EDITED, announcement, version=version.number, fields=fields, **people)
        _after_edit(announcement, by)
    return announcement


def _choose_people(
    announcement: Announcement, recipients: Sequence[Employee] | None
) -> dict[str, list[int]]:
    """Set the chosen people; who was added and removed (empty when nobody changed)."""
    if recipients is None:
        return {}
    before = set(announcement.recipients.values_list("pk", flat=True))
    after = {person.pk for person in recipients}
    if before == after:
        return {}
    announcement.recipients.set(recipients)
    return {
        "recipients_added": sorted(after - before),
        "recipients_removed": sorted(before - after),
    }


def _after_edit(announcement: Announcement, by: Any) -> None:
    if announcement.status != AnnouncementStatus.SCHEDULED:
        return
    if options().require_approval and not _approved(announcement):
        _await_approval(announcement, by)  # changed content needs a fresh approval
    else:
        announcements.schedule(announcement)  # keeps the cursor: nothing re-fires


def submit(announcement: Announcement, by: Any) -> Announcement:
    """Schedule it, or (when approval is required) put it in front of an approver."""
    require(by, "schedule_announcement")
    return _submit(announcement, by)


def _submit(announcement: Announcement, by: Any, **detail: Any) -> Announcement:
    if announcement.status not in SUBMITTABLE:
        raise ValidationError(
            f"a {announcement.get_status_display().lower()} announcement cannot be scheduled"
        )
    if options().require_approval and not _approved(announcement):
        announcements.validate(announcement)
        with transaction.atomic():
            _await_approval(announcement, by, **detail)
        return announcement
    with transaction.atomic():
        announcements.schedule(announcement)
        audit(by, AuditAction.SCHEDULED, announcement, next_fire_at=_iso(announcement), **detail)
    return announcement


def _await_approval(announcement: Announcement, by: Any, **detail: Any) -> None:
    Announcement.objects.filter(pk=announcement.pk).update(
        status=AnnouncementStatus.PENDING_APPROVAL, next_fire_at=None
    )
    announcement.status, announcement.next_fire_at = AnnouncementStatus.PENDING_APPROVAL, None
    audit(by, AuditAction.SUBMITTED, announcement, **detail)


def _approved(announcement: Announcement) -> bool:
    """Approval covers every language's latest version (bulletin.dispatch.translations)."""
    version = announcements.latest_version(announcement)
    return version is not None and not translations.unapproved(announcement)


def approve(announcement: Announcement, by: Any) -> Announcement:
    """A second person approves the current version of every language, which schedules it."""
    require(by, "approve_announcement")
    if announcement.status != AnnouncementStatus.PENDING_APPROVAL:
        raise ValidationError("only an announcement waiting for approval can be approved")
    version = announcements.latest_version(announcement)
    waiting = translations.unapproved(announcement)
    authors = {announcement.created_by_id, *(text.created_by_id for text in waiting)}
    if version is None or by.pk in authors:
        raise PermissionDenied("you cannot approve an announcement you wrote or last edited")
    with transaction.atomic():
        approved = translations.approve_all(announcement, by)
        languages = {text.language: text.number for text in approved}
        audit(by, AuditAction.APPROVED, announcement, version=version.number, languages=languages)
        announcements.schedule(announcement)
        audit(by, AuditAction.SCHEDULED, announcement, next_fire_at=_iso(announcement))
        translations.ask_again(announcement)  # what a material edit asked, now in force
    return announcement


def pause(announcement: Announcement, by: Any) -> None:
    _require_status(announcement, by, AnnouncementStatus.SCHEDULED, "paused")
    with transaction.atomic():
        announcements.pause(announcement)
        audit(by, AuditAction.PAUSED, announcement)


def resume(announcement: Announcement, by: Any) -> None:
    """Plan again from now: what fell due while paused is not sent."""
    _require_status(announcement, by, AnnouncementStatus.PAUSED, "resumed")
    with transaction.atomic():
        if options().require_approval and not _approved(announcement):
            _await_approval(announcement, by)  # edited while paused: approve the new text first
            return
        announcements.schedule(announcement)
        audit(by, AuditAction.RESUMED, announcement, next_fire_at=_iso(announcement))


def cancel(announcement: Announcement, by: Any) -> None:
    """Stop it, and withdraw what has not started sending (held deliveries too: a finished
    one-off whose people are still waiting for working hours can be cancelled)."""
    require(by, "schedule_announcement")
    if not _cancellable(announcement):
        raise ValidationError(f"it is already {announcement.status}")
    with transaction.atomic():
        announcements.cancel(announcement)
        audit(by, AuditAction.CANCELLED, announcement)


def _cancellable(announcement: Announcement) -> bool:
    if announcement.status == AnnouncementStatus.FINISHED:
        return held(announcement).exists()
    return announcement.status != AnnouncementStatus.CANCELLED


def held(announcement: Announcement) -> QuerySet[Delivery]:
    """Its deliveries waiting for their recipients' working hours."""
    return Delivery.objects.filter(occurrence__announcement=announcement, state=DeliveryState.HELD)


def send_now(announcement: Announcement, by: Any) -> int:
    """HR's "send now regardless": what waits for working hours goes now; returns how many."""
    require(by, "schedule_announcement")
    return _release(announcement, by)


def send_now_from_console(announcement: Announcement) -> int:
    """The same for an operator at the command line (no user, as `bulletin announce`)."""
    return _release(announcement, None, **CONSOLE)


def _release(announcement: Announcement, by: Any, **detail: Any) -> int:
    with transaction.atomic():
        released = holding.release_now(announcement, timezone.now())
        if released:
            audit(by, AuditAction.RELEASED, announcement, deliveries=released, **detail)
    return released


def delete_draft(announcement: Announcement, by: Any) -> None:
    """Delete a draft; anything ever scheduled is cancelled instead, keeping its history."""
    require(by, "delete_announcement")
    with transaction.atomic():
        deleted, _ = Announcement.objects.filter(
            pk=announcement.pk, status=AnnouncementStatus.DRAFT
        ).delete()
        if not deleted:
            raise ValidationError(
                f"only a draft can be deleted and this one is "
                f"{announcement.get_status_display().lower()}; cancel it instead"
            )
        audit(
            by, AuditAction.DELETED, None, announcement_id=announcement.pk, title=announcement.title
        )


def _require_status(announcement: Announcement, by: Any, status: str, verb: str) -> None:
    require(by, "schedule_announcement")
    if announcement.status != status:
        raise ValidationError(f"only a {status} announcement can be {verb}")


def retry(
    announcement: Announcement,
    by: Any,
    *,
    occurrence: Occurrence | None = None,
    include_unknown: bool = False,
) -> int:
    """Send failed (and, deliberately, unknown) deliveries again; returns how many.

    An ``unknown`` delivery may already have arrived: retrying it risks a duplicate, so it
    happens only when the caller confirms that risk with ``include_unknown``. Each gets a
    fresh retry budget (see ``Delivery.budget_start``).
    """
    require(by, "retry_delivery")
    states = RETRYABLE if include_unknown else (DeliveryState.FAILED,)
    rows = Delivery.objects.filter(occurrence__announcement=announcement, state__in=states)
    if occurrence is not None:
        rows = rows.filter(occurrence=occurrence)
    with transaction.atomic():
        count = orders.retry(rows, states, timezone.now())
        audit(
            by,
            AuditAction.RETRIED,
            announcement,
            deliveries=count,
            states=[str(s) for s in states],
            occurrence=getattr(occurrence, "pk", None),
        )
    return count


def send_test(announcement: Announcement, by: Any) -> str:
    """Email the announcement to the person asking, only: no occurrence, no delivery."""
    require(by, "add_announcement")
    if not by.email:
        raise ValidationError("your account has no email address to send the test to")
    me = Recipient(email=by.email, name=by.get_full_name() or by.get_username(), timezone="UTC")
    message = Message(
        # A test is its own message each time; the installation id keeps it from ever
        # matching another installation's test of its announcement number, by its user number.
        idempotency_key=(
            f"test.{announcement.pk}.{by.pk}.{timezone.now():%Y%m%d%H%M%S%f}.{installation_id()}"
        ),
        title=f"[TEST] {announcement.title}",
        text=render_text(announcement.body, me),
        html=render_html(announcement.body, me),
        body=announcement.body,
        recipient=me,
    )
    try:
        with EmailTransport() as transport:
            transport.send(message)
    except TransportError as exc:
        raise ValidationError(f"the test email could not be sent: {exc}") from None
    audit(by, AuditAction.TEST_SENT, announcement, to=by.email)
    return by.email


def _iso(announcement: Announcement) -> str | None:
    return announcement.next_fire_at.isoformat() if announcement.next_fire_at else None
