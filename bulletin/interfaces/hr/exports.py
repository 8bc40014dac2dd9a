"""Recipients and delivery states as CSV: streamed row by row, safe to open in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return) would be
read as a formula by Excel or LibreOffice; it is prefixed with an apostrophe so it stays text.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_safe

from bulletin.domain.models import Announcement, Delivery
from bulletin.interfaces.hr.access import hr_view

COLUMNS = (
    "fire_at",
    "recipient",
    "channel",
    "state",
    "attempts",
    "last_error",
    "sent_at",
    "hold_reason",  # why a held delivery waits for working hours (last: older readers keep theirs)
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 2000


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat() if moment is not None else ""


def _recipient(delivery: Delivery) -> str:
    if delivery.employee is not None and delivery.place is not None:
        return f"{delivery.employee.email} (via {delivery.place.name})"
    if delivery.employee is not None:
        return delivery.employee.email
    return delivery.place.name if delivery.place is not None else ""


def rows(announcement: Announcement) -> Iterator[list[str]]:
    yield list(COLUMNS)
    deliveries = (
        Delivery.objects.filter(occurrence__announcement=announcement)
        .select_related("occurrence", "employee", "place")
        .order_by("occurrence__fire_at", "occurrence_id", "id")
    )
    for delivery in deliveries.iterator(chunk_size=CHUNK):
        yield [
            safe_cell(cell)
            for cell in (
                _iso(delivery.occurrence.fire_at),
                _recipient(delivery),
                delivery.channel,
                delivery.state,
                delivery.attempts,
                delivery.last_error,
                _iso(delivery.sent_at),
                delivery.hold_reason,
            )
        ]


class _Echo:
    """A file-like object whose write returns the line, for csv.writer to stream through."""

    def write(self, value: str) -> str:
        return value


def _lines(source: Iterable[list[str]]) -> Iterator[str]:
    writer: Any = csv.writer(_Echo())
    for row in source:
        yield writer.writerow(row)


@hr_view("view_delivery")
@require_safe
def deliveries_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    announcement = get_object_or_404(Announcement, pk=pk)
    response = StreamingHttpResponse(_lines(rows(announcement)), content_type="text/csv")
    name = f"announcement-{announcement.pk}-deliveries.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
