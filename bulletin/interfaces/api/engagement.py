"""``GET /announcements/{id}/engagement``: who has read an announcement, in figures.

The same figures as HR's detail page (``bulletin.interfaces.hr.engagement``): delivered by
channel, people reached, opened and acknowledged, per occurrence and in total, and by
department and location, where a group of fewer than 5 people reached says only
``"fewer_than_5": true`` (its figures are null) so no one's reading can be singled out.
"""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Router, Schema
from ninja.errors import HttpError

from bulletin.domain.models import Announcement, Occurrence
from bulletin.interfaces.api.auth import ANNOUNCEMENTS_READ, needs
from bulletin.interfaces.api.common import RowId, found
from bulletin.interfaces.api.schemas import replies
from bulletin.interfaces.hr import engagement

router = Router(tags=["announcements"])

Rate = float | None


class FiguresOut(Schema):
    delivered: dict[str, int] = Field(
        description="Sent deliveries per channel (kept counts: pruned ones included)."
    )
    reached: int | None = Field(
        description="People with a delivery sent on any channel; null once retention has "
        "pruned some of its sent deliveries (who they were is no longer known)."
    )
    opened: int = Field(description="People who read it in Bulletin.")
    acknowledged: int = Field(description="People who acknowledged it, by any channel.")
    opened_rate: Rate = Field(
        description="opened / reached (0 to 1); null when reached is 0 or null."
    )
    acknowledged_rate: Rate = Field(description="acknowledged / reached (0 to 1), or null.")


class OccurrenceFigures(FiguresOut):
    occurrence_id: int
    fire_at: datetime


class GroupOut(Schema):
    name: str = Field(description="The department or location; empty when none is recorded.")
    fewer_than_5: bool = Field(
        description="True when fewer than 5 people of the group were reached: its figures "
        "are then null, for their privacy."
    )
    reached: int | None
    opened: int | None
    acknowledged: int | None
    opened_rate: Rate
    acknowledged_rate: Rate


class EngagementOut(Schema):
    announcement_id: int
    requires_ack: bool
    total: FiguresOut = Field(description="Every occurrence added up (a person once per send).")
    occurrences: list[OccurrenceFigures] = Field(description="Newest first.")
    by_department: list[GroupOut]
    by_location: list[GroupOut]


def _figures(figures: engagement.Figures) -> dict[str, object]:
    return {
        "delivered": figures.delivered,
        "reached": figures.reached,
        "opened": figures.opened,
        "acknowledged": figures.acknowledged,
        "opened_rate": figures.opened_rate,
        "acknowledged_rate": figures.acknowledged_rate,
    }


def _group(group: engagement.Group) -> dict[str, object]:
    hidden = group.fewer_than_5
    shown = {
        "reached": group.reached,
        "opened": group.opened,
        "acknowledged": group.acknowledged,
        "opened_rate": group.opened_rate,
        "acknowledged_rate": group.acknowledged_rate,
    }
    return {
        "name": group.name,
        "fewer_than_5": hidden,
        **{key: None if hidden else value for key, value in shown.items()},
    }


def _occurrence(item: Announcement, pk: int | None) -> Occurrence | None:
    if pk is None:
        return None
    occurrence = Occurrence.objects.filter(announcement=item, pk=pk).first()
    if occurrence is None:
        raise HttpError(404, f"announcement {item.pk} has no occurrence with id {pk}")
    return occurrence


@router.get(
    "/{int:id}/engagement",
    response=replies({200: EngagementOut}, 404),
    **needs(ANNOUNCEMENTS_READ, "view_announcement"),
)
def announcement_engagement(
    request: HttpRequest, id: int, occurrence_id: RowId | None = None
) -> dict[str, object]:
    """Who has read it: delivered, reached, opened and acknowledged, per occurrence and in
    total, and by department and location (groups under 5 people say only so).
    ``occurrence_id`` narrows everything to one occurrence."""
    item = found(Announcement.objects.all(), id)
    occurrence = _occurrence(item, occurrence_id)
    summary = engagement.figures(item, occurrence)
    fired = engagement.fire_times(list(summary.per_occurrence))
    occurrences = sorted(fired.values(), key=lambda o: (o.fire_at, o.pk), reverse=True)
    return {
        "announcement_id": item.pk,
        "requires_ack": item.requires_ack,
        "total": _figures(summary.total),
        "occurrences": [
            {"occurrence_id": o.pk, "fire_at": o.fire_at, **_figures(summary.per_occurrence[o.pk])}
            for o in occurrences
        ],
        "by_department": [_group(g) for g in engagement.groups(item, "department", occurrence)],
        "by_location": [_group(g) for g in engagement.groups(item, "location", occurrence)],
    }
