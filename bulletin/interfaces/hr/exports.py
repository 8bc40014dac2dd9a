"""Recipients and delivery states as CSV: streamed, safe to open in a spreadsheet, fast.

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return) would be
read as a formula by Excel or LibreOffice; it is prefixed with an apostrophe so it stays text.

An announcement that fired daily for a year to 10,000 people has millions of deliveries, so
the export is one SELECT (joins, recipient and neutralising done by the database) read in
chunks through an iterating cursor — server-side on PostgreSQL — and written a chunk of rows at
a time: no model instances, no query per row, memory flat whatever the size. Times are the
instant in UTC as ``datetime.isoformat()`` writes it.

A failure once the download has begun cannot become an error page (the status line is gone):
it is logged with the announcement's id and the response is broken off, so the browser
reports a failed download instead of saving a file that looks complete.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Callable, Generator, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.http import HttpRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_safe

from bulletin.domain.models import Announcement, Delivery, Employee, Occurrence, Place
from bulletin.interfaces.hr.access import hr_view

log = logging.getLogger(__name__)

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
CHUNK = 2000  # rows per fetch from the cursor, and per piece of the response
# How Django stores a time in SQLite: naive UTC, microseconds only when there are some.
_CANONICAL = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{6})?")


def _neutralised(column: str) -> str:
    """SQL for a text column's cell: an apostrophe before a formula's first character."""
    starts = ", ".join(["%s"] * len(_FORMULA_STARTS))
    return (
        f"CASE WHEN substr({column}, 1, 1) IN ({starts}) THEN '''' || {column} "
        f"ELSE COALESCE({column}, '') END"
    )


# A person's email; a place's name; a person reached through a place: "email (via place)".
_RECIPIENT = (
    "CASE WHEN e.id IS NOT NULL AND p.id IS NOT NULL THEN e.email || ' (via ' || p.name || ')' "
    "WHEN e.id IS NOT NULL THEN e.email ELSE p.name END"
)


def _select() -> str:
    # Times stay text on SQLite (a bare column would be parsed into a datetime per row by the
    # driver's converter, the slowest part of the loop); PostgreSQL hands over datetimes.
    time = "CAST({} AS TEXT)" if connection.vendor == "sqlite" else "{}"
    return (
        f"SELECT {time.format('o.fire_at')}, {_neutralised(_RECIPIENT)}, d.channel, d.state, "
        f"d.attempts, {_neutralised('d.last_error')}, {time.format('d.sent_at')}, "
        f"{_neutralised('d.hold_reason')} "
        f"FROM {Delivery._meta.db_table} d "
        f"JOIN {Occurrence._meta.db_table} o ON o.id = d.occurrence_id "
        f"LEFT JOIN {Employee._meta.db_table} e ON e.id = d.employee_id "
        f"LEFT JOIN {Place._meta.db_table} p ON p.id = d.place_id "
        "WHERE o.announcement_id = %s ORDER BY o.fire_at, d.occurrence_id, d.id"
    )


def _parameters(announcement_id: int) -> list[Any]:
    return [*_FORMULA_STARTS * 3, announcement_id]


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat() if moment is not None else ""


def _iso_text(stored: str | None) -> str:
    """A SQLite time as stored by Django (naive UTC, ``str(datetime)``) in ISO form with its
    offset, by rearranging the text: exactly what parsing and ``_iso`` would write."""
    if stored is None:
        return ""
    if _CANONICAL.fullmatch(stored) and not stored.endswith(".000000"):
        return f"{stored[:10]}T{stored[11:]}+00:00"
    parsed = parse_datetime(stored)
    if parsed is None:
        raise ValueError(f"not a stored time: {stored!r}")
    return _iso(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


def _time_format() -> Callable[[Any], str]:
    return _iso_text if connection.vendor == "sqlite" else _iso


def _formatted(
    batch: Sequence[tuple[Any, ...]], time: Callable[[Any], str]
) -> Iterator[tuple[Any, ...]]:
    last_fire, fire_text = None, ""
    for fire, recipient, channel, state, attempts, error, sent, hold in batch:
        if fire != last_fire:  # one occurrence's rows come together: format its time once
            last_fire, fire_text = fire, time(fire)
        yield fire_text, recipient, channel, state, attempts, error, time(sent), hold


def chunks(announcement_id: int) -> Generator[str]:
    """The CSV text, header first, a chunk of rows at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    yield buffer.getvalue()
    time = _time_format()
    with connection.chunked_cursor() as cursor:
        cursor.execute(_select(), _parameters(announcement_id))
        while batch := cursor.fetchmany(CHUNK):
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(_formatted(batch, time))
            yield buffer.getvalue()


def _logged(announcement_id: int, source: Generator[str]) -> Iterator[bytes]:
    """The chunks as bytes; a failure is logged with the announcement's id, then re-raised so
    the server breaks the response off (no error page can follow rows already sent)."""
    size = 0
    facts = {"announcement_id": announcement_id}
    try:
        for piece in source:
            data = piece.encode()
            size += len(data)
            yield data
    except GeneratorExit:  # the client went away; closing the source closes its cursor
        log.info("delivery export abandoned", extra=facts | {"bytes": size})
        raise
    except Exception:
        log.exception("delivery export failed", extra=facts | {"bytes": size})
        raise
    finally:
        source.close()
    log.info("deliveries exported", extra=facts | {"bytes": size})


@hr_view("view_delivery")
@require_safe
def deliveries_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    announcement = get_object_or_404(Announcement, pk=pk)
    stream = _logged(announcement.pk, chunks(announcement.pk))
    response = StreamingHttpResponse(stream, content_type="text/csv")
    name = f"announcement-{announcement.pk}-deliveries.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
