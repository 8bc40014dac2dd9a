"""Who has read an announcement, and who has acknowledged it: one row per person and
occurrence, whichever channel brought them.

A person *opens* an occurrence by reading it in Bulletin (their inbox item, or the page an
email's "Open in Bulletin" signs them in to) and *acknowledges* it by the inbox's button or an
email's "Acknowledge" link. Only this module writes these rows, and only by conditional
UPDATEs (``… WHERE opened_at IS NULL``): the first time is kept however many tabs,
double-clicks, or channels race, and each function says whether it was the first. An
acknowledgement also opens, and is mirrored onto the person's inbox item when there is one, so
the inbox shows it acknowledged wherever it was done. A reminder's reading counts for the
occurrence it reminds of (``root_of``).
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce

log = logging.getLogger(__name__)


class Engagement(models.Model):
    occurrence = models.ForeignKey(
        "bulletin.Occurrence", on_delete=models.CASCADE, related_name="engagements"
    )
    employee = models.ForeignKey(
        "bulletin.Employee", on_delete=models.CASCADE, related_name="engagements"
    )
    opened_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    # The channel whose link (or the inbox, "inapp") carried the acknowledgement.
    acknowledged_via = models.CharField(max_length=16, blank=True)
    # What they acknowledged: the language of the text they were sent and its version number.
    # Kept when an edit asks them to acknowledge again (acknowledged_at cleared), so the new
    # request reaches exactly those who acknowledged an older text of that language.
    language = models.CharField(max_length=35, blank=True, default="", db_default="")
    version_number = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = "reading and acknowledgement"
        verbose_name_plural = "readings and acknowledgements"
        constraints = [
            # One row per person and occurrence; its index also serves "this occurrence's
            # engagements" (HR's figures, the not-yet-acknowledged list).
            models.UniqueConstraint(fields=["occurrence", "employee"], name="engagement_identity"),
        ]

    def __str__(self) -> str:
        return f"occurrence {self.occurrence_id}, employee {self.employee_id}"


def root_of(occurrence_id: int) -> int:
    """The occurrence a reading counts for: a reminder's is the occurrence it reminds of."""
    from bulletin.domain.models import Occurrence

    reminded = Occurrence.objects.filter(pk=occurrence_id).values_list("reminder_of", flat=True)
    return reminded.first() or occurrence_id


def _row(occurrence_id: int, employee_id: int) -> Engagement:
    # get_or_create retries the get when a racing twin's insert wins the unique constraint.
    row, _ = Engagement.objects.get_or_create(occurrence_id=occurrence_id, employee_id=employee_id)
    return row


def opened(occurrence_id: int, employee_id: int, at: datetime) -> bool:
    """Record that the person read it (or a reminder of it); True the first time."""
    occurrence_id = root_of(occurrence_id)
    row = _row(occurrence_id, employee_id)
    first = bool(Engagement.objects.filter(pk=row.pk, opened_at__isnull=True).update(opened_at=at))
    if first:
        extra = {"occurrence_id": occurrence_id, "employee_id": employee_id}
        log.info("announcement opened", extra=extra)
    return first


def acknowledged(occurrence_id: int, employee_id: int, via: str, at: datetime) -> bool:
    """Record the person's acknowledgement (and that they read it) of the occurrence or a
    reminder of it; True the first time."""
    from bulletin.domain.models import InboxItem

    language, number = _text_sent(occurrence_id, employee_id)
    occurrence_id = root_of(occurrence_id)
    row = _row(occurrence_id, employee_id)
    first = bool(
        Engagement.objects.filter(pk=row.pk, acknowledged_at__isnull=True).update(
            acknowledged_at=at,
            acknowledged_via=via,
            opened_at=Coalesce("opened_at", at),
            language=language,
            version_number=number,
        )
    )
    # The inbox shows it acknowledged, whichever channel's button was pressed.
    its = Q(delivery__occurrence_id=occurrence_id) | Q(
        delivery__occurrence__reminder_of_id=occurrence_id
    )
    InboxItem.objects.filter(its, employee_id=employee_id, acknowledged_at__isnull=True).update(
        acknowledged_at=at, read_at=Coalesce("read_at", at)
    )
    if first:
        extra = {"occurrence_id": occurrence_id, "employee_id": employee_id, "via": via}
        log.info("announcement acknowledged", extra=extra)
    return first


def _text_sent(occurrence_id: int, employee_id: int) -> tuple[str, int | None]:
    """The language and version number of the text the person was sent by this occurrence (a
    reminder's own, or one asking again after an edit): what they acknowledge."""
    from bulletin.domain.models import Delivery

    sent = Delivery.objects.filter(occurrence_id=occurrence_id, employee_id=employee_id)
    found = sent.order_by("id").values_list("language", "version_number").first()
    return found if found is not None else ("", None)


def acknowledged_at(occurrence_id: int, employee_id: int) -> datetime | None:
    return (
        Engagement.objects.filter(occurrence_id=root_of(occurrence_id), employee_id=employee_id)
        .values_list("acknowledged_at", flat=True)
        .first()
    )
