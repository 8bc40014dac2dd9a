"""Reads and acknowledgements over time, as a small SVG line chart drawn on the server.

No chart library and no script: the page's Content-Security-Policy allows neither inline
scripts nor inline styles, and two cumulative lines need neither. The database counts the
engagements per bucket (``engagement.per_bucket``); this module lays the buckets out on the
display zone's clock — hourly for the first three days, daily up to four months, weekly
beyond — and turns the running totals into coordinates for ``_engagement_chart.html``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bulletin.domain.models import Announcement, Occurrence
from bulletin.interfaces.hr import engagement

HOURLY_UP_TO = timedelta(days=3)
DAILY_UP_TO = timedelta(days=120)
# The drawing, in the SVG's own units (it scales to the page's width).
WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 620, 16, 190


@dataclass(frozen=True)
class Series:
    name: str
    points: str  # "x,y x,y …" for a polyline
    dots: list[tuple[float, float]]
    total: int


@dataclass
class Chart:
    unit: str  # hour, day or week
    zone: str
    reads: Series
    acknowledgements: Series
    x_labels: list[tuple[float, str]] = field(default_factory=list)
    y_labels: list[tuple[float, str]] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = RIGHT
    top: int = TOP
    bottom: int = BOTTOM

    @property
    def middle_x(self) -> float:
        return (self.left + self.right) / 2

    @property
    def y_title_x(self) -> float:
        # The y axis's title is turned a quarter left, so its x runs up the page (negative).
        return -(self.top + self.bottom) / 2

    @property
    def description(self) -> str:
        return (
            f"Running totals per {self.unit} ({self.zone}): {self.reads.total} "
            f"{'person' if self.reads.total == 1 else 'people'} opened it, "
            f"{self.acknowledgements.total} acknowledged it."
        )


def unit_for(span: timedelta) -> str:
    if span <= HOURLY_UP_TO:
        return "hour"
    return "day" if span <= DAILY_UP_TO else "week"


def buckets(first: datetime, last: datetime, unit: str, zone: ZoneInfo) -> list[datetime]:
    """The start (UTC) of every ``unit`` of ``zone``'s clock from ``first``'s to ``last``'s."""
    local = first.astimezone(zone)
    if unit == "hour":
        start = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        return _stepped(start, last, timedelta(hours=1))
    day = local.date() - timedelta(days=local.weekday() if unit == "week" else 0)
    step = timedelta(days=7 if unit == "week" else 1)
    found = []
    while (moment := datetime.combine(day, time(), zone).astimezone(UTC)) <= last:
        found.append(moment)
        day += step
    return found


def _stepped(start: datetime, last: datetime, step: timedelta) -> list[datetime]:
    found = []
    while start <= last:
        found.append(start)
        start += step
    return found


def timeline(
    item: Announcement, zone: ZoneInfo, occurrence: Occurrence | None = None
) -> Chart | None:
    """The chart of an announcement's reads and acknowledgements; None before anyone read it."""
    first, last = engagement.first_and_last(item, occurrence)
    if first is None or last is None:
        return None
    unit = unit_for(last - first)
    starts = buckets(first, last, unit, zone)
    opened = engagement.per_bucket(item, occurrence, "opened_at", unit, zone)
    acked = engagement.per_bucket(item, occurrence, "acknowledged_at", unit, zone)
    reads, acks = _running(starts, opened), _running(starts, acked)
    top = max(reads[-1] if reads else 0, acks[-1] if acks else 0, 1)
    return Chart(
        unit=unit,
        zone=str(zone),
        reads=_series("Opened", reads, top),
        acknowledgements=_series("Acknowledged", acks, top),
        x_labels=_x_labels(starts, unit, zone),
        y_labels=[(_y(n, top), str(n)) for n in sorted({0, top // 2, top})],
    )


def _running(starts: list[datetime], per: dict[datetime, int]) -> list[int]:
    total, found = 0, []
    for start in starts:
        total += per.get(start, 0)
        found.append(total)
    return found


def _x(index: int, count: int) -> float:
    if count == 1:
        return (LEFT + RIGHT) / 2
    return round(LEFT + (RIGHT - LEFT) * index / (count - 1), 1)


def _y(value: int, top: int) -> float:
    return round(BOTTOM - (BOTTOM - TOP) * value / top, 1)


def _series(name: str, totals: list[int], top: int) -> Series:
    dots = [(_x(i, len(totals)), _y(n, top)) for i, n in enumerate(totals)]
    points = " ".join(f"{x},{y}" for x, y in dots)
    return Series(name, points, dots if len(dots) <= 40 else [], totals[-1] if totals else 0)


def _x_labels(starts: list[datetime], unit: str, zone: ZoneInfo) -> list[tuple[float, str]]:
    """The first, middle and last bucket, in words of the zone's clock."""
    shape = "%d %b %H:%M" if unit == "hour" else "%d %b"
    picked = sorted({0, len(starts) // 2, len(starts) - 1})
    return [(_x(i, len(starts)), starts[i].astimezone(zone).strftime(shape)) for i in picked]
