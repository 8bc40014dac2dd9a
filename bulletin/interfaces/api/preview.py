"""Upcoming fire times of a schedule that is not saved yet, as ``bulletin preview`` prints them."""

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router

from bulletin.dispatch.announcements import EARLIEST_DAY, LATEST_DAY
from bulletin.interfaces.api.auth import ANNOUNCEMENTS_READ, needs
from bulletin.interfaces.api.common import NeededText
from bulletin.interfaces.api.errors import Problems, problem
from bulletin.interfaces.api.outputs import PreviewOut
from bulletin.interfaces.api.schemas import replies
from bulletin.scheduling.rules import CronRule, FireTime, ScheduleError, fire_times, parse_zone

router = Router(tags=["announcements"])

# The last instant a preview shows: past it, some zone's wall clock would leave year 9999.
LAST_INSTANT = datetime.combine(LATEST_DAY, time.max, tzinfo=UTC)


def fire_time_rows(fires: Iterable[FireTime]) -> list[dict[str, Any]]:
    return [{"local": fire.local, "utc": fire.utc, "note": fire.note} for fire in fires]


def within_calendar(fires: Iterable[FireTime]) -> Iterator[FireTime]:
    """The fire times until the calendar's end: a schedule looking past year 9999 for its
    next time (``0 9 29 2 *`` late in 9999) overflows datetime, which means "no more"."""
    try:
        yield from fires
    except OverflowError:
        return


def _start(value: str | None, zone: ZoneInfo) -> datetime:
    if not value:
        return timezone.now()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Problems([problem("from", f"'{value}' is not an ISO date-time")]) from None
    if not EARLIEST_DAY <= parsed.date() <= LATEST_DAY:
        message = f"'{value}' must be between {EARLIEST_DAY} and {LATEST_DAY}"
        raise Problems([problem("from", message)])
    # A naive time is read in the schedule's zone (the earlier instant if ambiguous), as the CLI.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


@router.get(
    "/preview",
    response=replies({200: PreviewOut}),
    **needs(ANNOUNCEMENTS_READ, "view_announcement"),
)
def preview_schedule(
    request: HttpRequest,
    cron: NeededText,
    timezone: NeededText,
    count: int = Query(10, ge=1, le=100),
    after: str | None = Query(None, alias="from", description="ISO date-time; default now"),
) -> dict[str, Any]:
    """The next fire times of a cron schedule in a zone, with a note where DST moves one."""
    rule, zone, problems = None, None, []
    try:
        rule = CronRule(cron)
    except ScheduleError as exc:
        problems.append(problem("cron", str(exc)))
    try:
        zone = parse_zone(timezone)
    except ScheduleError as exc:
        problems.append(problem("timezone", str(exc)))
    if rule is None or zone is None:
        raise Problems(problems)
    fires = fire_times(rule, zone, _start(after, zone), until=LAST_INSTANT, limit=count)
    return {"zone": zone.key, "fire_times": fire_time_rows(within_calendar(fires))}
