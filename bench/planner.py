"""A planner tick when nothing is due, with 1,000 and then 100,000 scheduled announcements.

The tick asks the database for announcements whose next fire time has come and occurrences
still waiting for fan-out; both are answered from indexes, so its cost must not grow with the
number of announcements (each of which also has an occurrence already sent, as in real life).
The baseline is the same tick over the small table; the value is the tick over the large one.
"""

from __future__ import annotations

import argparse
from datetime import timedelta

from bench.common import (
    RATIO_AT_MOST,
    Result,
    median,
    number_series,
    report,
    settle,
    setup_django,
    timed,
)


def add_announcements(count: int) -> None:
    """``count`` copies of a template announcement, each with one fanned-out occurrence."""
    from django.db import connection

    from bulletin.domain.models import Announcement, Occurrence

    template = Announcement.objects.order_by("pk").first()
    assert template is not None
    table, occurrences = Announcement._meta.db_table, Occurrence._meta.db_table
    fields = [
        f.column
        for f in Announcement._meta.concrete_fields
        if f.column not in ("id", "next_fire_at")
    ]
    columns = ", ".join(fields)
    series = number_series("s")
    with connection.cursor() as cursor:
        # Next fire times spread over the coming week: none is due now.
        cursor.execute(
            f"INSERT INTO {table} ({columns}, next_fire_at) SELECT {columns}, "
            f"{_plus_minutes('t.next_fire_at', 'n')} FROM {table} t, {series} WHERE t.id = %s",
            [count, template.pk],
        )
        cursor.execute(
            f"INSERT INTO {occurrences} (announcement_id, version_id, zone, fire_at, state, "
            f"delivery_count, note, created_at) SELECT a.id, NULL, 'Europe/London', "
            f"a.created_at, 'fanned_out', 0, '', a.created_at FROM {table} a WHERE NOT EXISTS "
            f"(SELECT 1 FROM {occurrences} o WHERE o.announcement_id = a.id)"
        )
        if connection.vendor == "postgresql":
            cursor.execute(f"VACUUM ANALYZE {table}")
            cursor.execute(f"VACUUM ANALYZE {occurrences}")
    settle()


def _plus_minutes(column: str, minutes: str) -> str:
    from django.db import connection

    if connection.vendor == "postgresql":
        return f"{column} + ({minutes} %% 10000) * interval '1 minute'"
    return (
        f"strftime('%%Y-%%m-%%d %%H:%%M:%%f', {column}, '+' || ({minutes} %% 10000) || ' minutes')"
    )


def idle_tick_seconds(ticks: int) -> tuple[float, int]:
    """Median seconds per tick over ``ticks`` ticks, and how many occurrences they planned."""
    from bulletin.dispatch.planning import tick

    planned = 0

    def one() -> None:
        nonlocal planned
        result = tick()
        planned += result.occurrences + result.deliveries

    return median([timed(one) for _ in range(ticks)]), planned


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, required=True)
    parser.add_argument("--large", type=int, required=True)
    parser.add_argument("--ticks", type=int, default=300)
    args = parser.parse_args()
    setup_django()
    from django.db import connection
    from django.utils import timezone

    from bulletin.domain.models import Announcement
    from tests.factories import announcement

    announcement(now=timezone.now() + timedelta(minutes=1), cron="0 9 * * 1")
    add_announcements(args.small - 1)
    small, planned_small = idle_tick_seconds(args.ticks)
    add_announcements(args.large - args.small)
    large, planned_large = idle_tick_seconds(args.ticks)
    count = Announcement.objects.filter(status="scheduled").count()
    problems = []
    if count != args.large:
        problems.append(f"{count} scheduled announcements, not {args.large}")
    if planned_small or planned_large:
        problems.append(f"an idle tick planned {planned_small + planned_large} occurrences")
    wrong = "; ".join(problems)
    database = "SQLite" if connection.vendor == "sqlite" else "PostgreSQL"
    report(
        Result(
            name=f"idle tick, {args.large} vs {args.small} announcements, {database}",
            value=large * 1000,
            baseline=small * 1000,
            unit="ms",
            target=1.5,
            compare=RATIO_AT_MOST,
            measures=f"median of {args.ticks} planner ticks with nothing due, large table",
            baseline_is="the same ticks with the small table",
            check=wrong or f"{count} announcements scheduled, nothing planned by an idle tick",
            correct=not wrong,
        )
    )


if __name__ == "__main__":
    main()
