"""HR's "who has read it": the detail page's engagement section, the not-yet-acknowledged
list and its CSV export. The figures come from ``engagement`` (the queries) and
``engagement_chart`` (the SVG's geometry); these views only present them.

Both pages need what the detail page needs (``view_announcement``): they show people reached
by an announcement that HR can already see the audience of.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Generator, Iterator, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from django.core.paginator import Paginator
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from bulletin.domain.languages import display_name
from bulletin.domain.models import Announcement, Occurrence
from bulletin.interfaces.hr import engagement, engagement_chart, exports, reminders
from bulletin.interfaces.hr.access import hr_view
from bulletin.interfaces.hr.present import display_zone, in_zone
from bulletin.interfaces.hr.schedule import zone_or_none

log = logging.getLogger(__name__)

PEOPLE_PER_PAGE = 50
OCCURRENCES_PER_PAGE = 25
# Sent deliveries up to which the detail page counts people reached and the breakdowns itself
# (a one-off to a 2,000-person company on three channels is 6,000).
DETAIL_SENT_UP_TO = 20_000
CSV_COLUMNS = ("sent_at", "name", "email", "department", "location")


def for_detail(
    item: Announcement, zone: ZoneInfo, rows: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The detail page's engagement section for the occurrences on its page (``rows``, each
    with its ``occurrence`` and ``fire`` text). Past ``DETAIL_SENT_UP_TO`` sent deliveries it
    leaves out what reads every one of them (people reached, the breakdowns) and links to
    the full figures, so the detail page costs the same at any size (``make bench``)."""
    return _section(item, zone, rows, DETAIL_SENT_UP_TO)


def _section(
    item: Announcement, zone: ZoneInfo, rows: Sequence[dict[str, Any]], up_to: int | None
) -> dict[str, Any]:
    summary = engagement.figures(item, sent_up_to=up_to)
    counted = summary.people_counted
    return {
        "total": summary.total,
        "occurrences": [
            {
                "fire": row["fire"],
                "occurrence_id": row["occurrence"].pk,
                "figures": summary.per_occurrence.get(row["occurrence"].pk),
            }
            for row in rows
        ],
        "people_counted": counted,
        "by_department": engagement.groups(item, "department") if counted else [],
        "by_location": engagement.groups(item, "location") if counted else [],
        "by_language": by_language(item) if counted else [],
        "chart": engagement_chart.timeline(item, zone),
        "smallest": engagement.SMALLEST_GROUP,
        "full_page": up_to is None,
    }


def by_language(item: Announcement) -> list[dict[str, Any]]:
    """Per language of the text sent, most sent first: sent deliveries (every channel), and
    the people reached, opened and acknowledged (a small group without its figures)."""
    sent = engagement.sent_by_language(item)
    groups = {group.name: group for group in engagement.groups(item, engagement.BY_LANGUAGE)}
    tags = sorted(set(sent) | set(groups), key=lambda tag: (-sent.get(tag, 0), tag))
    return [
        {
            "language": tag,
            "name": display_name(tag),
            "sent": sent.get(tag, 0),
            "group": groups.get(tag),
        }
        for tag in tags
    ]


@hr_view("view_announcement")
@require_safe
def figures_page(request: HttpRequest, pk: int) -> HttpResponse:
    """Every figure, however many deliveries (the detail page links here past its limit)."""
    item = get_object_or_404(Announcement, pk=pk)
    zone = display_zone(item)
    occurrences = item.occurrences.order_by("-fire_at", "-id")
    page = Paginator(occurrences, OCCURRENCES_PER_PAGE).get_page(request.GET.get("page"))
    rows = [
        {"occurrence": o, "fire": in_zone(o.fire_at, _zone_of(o, zone))} for o in page.object_list
    ]
    context = {"item": item, "page": page, "engagement": _section(item, zone, rows, None)}
    return render(request, "bulletin/hr/engagement_page.html", context)


def _asking(pk: int) -> Announcement:
    item = get_object_or_404(Announcement, pk=pk)
    if not item.requires_ack:
        raise Http404("This announcement does not ask for an acknowledgement.")
    return item


def _occurrence(item: Announcement, raw: str | None) -> Occurrence | None:
    # Another announcement's occurrence, an unknown id or not a number: all look missing.
    if not raw:
        return None
    if not raw.isdigit():
        raise Http404("That occurrence is not part of this announcement.")
    return get_object_or_404(Occurrence, pk=int(raw), announcement=item)


def _zone_of(occurrence: Occurrence, fallback: ZoneInfo) -> ZoneInfo:
    return zone_or_none(occurrence.zone) or fallback


@hr_view("view_announcement")
@require_safe
def not_acknowledged(request: HttpRequest, pk: int) -> HttpResponse:
    item = _asking(pk)
    occurrence = _occurrence(item, request.GET.get("occurrence"))
    zone = display_zone(item)
    # NotAcknowledged pages by slices of one query (all Paginator asks of it): no full list.
    people_list: Any = engagement.NotAcknowledged(item, occurrence)
    paginator: Paginator[engagement.Unacknowledged] = Paginator(people_list, PEOPLE_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    fired = engagement.fire_times([person.occurrence_id for person in page.object_list])
    people = [
        {"person": person, "fire": in_zone(fired[o].fire_at, _zone_of(fired[o], zone))}
        for person in page.object_list
        if (o := person.occurrence_id) in fired
    ]
    context = {
        "item": item,
        "occurrence": occurrence,
        "occurrence_fire": in_zone(occurrence.fire_at, zone) if occurrence else "",
        "people": people,
        "page": page,
        "query": f"occurrence={occurrence.pk}&" if occurrence else "",
        "remind": _remind_form(request, occurrence),
    }
    return render(request, "bulletin/hr/not_acknowledged.html", context)


def _remind_form(request: HttpRequest, occurrence: Occurrence | None) -> dict[str, Any] | None:
    """ "Remind them", for one send, to whoever may send reminders (reminders.py)."""
    if occurrence is None or not request.user.has_perm("bulletin.schedule_announcement"):
        return None
    return reminders.remind_form(occurrence)


# --- the CSV export -------------------------------------------------------------------------


def _csv_statement() -> str:
    # Times stay text on SQLite, as in the deliveries export (exports._time_format reads them).
    fire = "CAST(o.fire_at AS TEXT)" if connection.vendor == "sqlite" else "o.fire_at"
    texts = ", ".join(
        exports._neutralised(f"e.{column}")
        for column in ("name", "email", "department", "location")
    )
    return engagement.not_acknowledged_sql(f"{fire}, {texts}")


def csv_chunks(item: Announcement, occurrence: Occurrence | None) -> Generator[str]:
    """The list as CSV text, header first, a chunk of rows at a time (a chunked cursor)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    time = exports._time_format()
    parameters = [
        *exports._FORMULA_STARTS * 4,
        *engagement.NotAcknowledged(item, occurrence).parameters,
    ]
    with connection.chunked_cursor() as cursor:
        cursor.execute(_csv_statement(), parameters)
        while batch := cursor.fetchmany(exports.CHUNK):
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(_rows(batch, time))
            yield buffer.getvalue()


def _rows(batch: Sequence[tuple[Any, ...]], time: Any) -> Iterator[tuple[Any, ...]]:
    for fire, *texts in batch:
        yield (time(fire), *texts)


@hr_view("view_announcement")
@require_safe
def not_acknowledged_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    item = _asking(pk)
    occurrence = _occurrence(item, request.GET.get("occurrence"))
    log.info("not-acknowledged list exported", extra={"announcement_id": item.pk})
    stream = exports._logged(item.pk, csv_chunks(item, occurrence))
    response = StreamingHttpResponse(stream, content_type="text/csv")
    name = f"announcement-{item.pk}-not-acknowledged.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
