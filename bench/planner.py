"""A planner tick when nothing is due, with 1,000 and with 100,000 scheduled announcements.

The tick asks the database for announcements whose next fire time has come and occurrences
still waiting for fan-out; both are answered from indexes, so its cost must not grow with the
number of announcements (each of which also has an occurrence already sent, as in real life).
The baseline is the same tick over the small table; the value is the tick over the large one.

The two tables live in two databases (the large one a copy of the small one, grown), each
ticked by a process of its own; the two take turns, a block of ticks each, so that a slow
minute of the machine lands on both sides of a block's ratio instead of on one table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from bench.common import (
    RATIO_AT_MOST,
    ROOT,
    Result,
    median,
    number_series,
    paired_ratio,
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


def serve(grow: int) -> None:
    """A ticking process: grow its table, then answer each line "N" with N ticks' median."""
    setup_django()
    from bulletin.domain.models import Announcement

    if grow:
        add_announcements(grow)
    idle_tick_seconds(20)  # warm: plans cached, indexes read once
    scheduled = Announcement.objects.filter(status="scheduled").count()
    print(json.dumps({"scheduled": scheduled}), flush=True)
    for line in sys.stdin:
        seconds, planned = idle_tick_seconds(int(line))
        print(json.dumps({"median": seconds, "planned": planned}), flush=True)


class Ticker:
    """One serving process, over one database."""

    def __init__(self, database_url: str, grow: int) -> None:
        command = [sys.executable, "-m", "bench.planner", "--serve", f"--grow={grow}"]
        env = {**os.environ, "DATABASE_URL": database_url}
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.scheduled = int(self._answer()["scheduled"])

    def ticks(self, count: int) -> tuple[float, int]:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{count}\n")
        self.process.stdin.flush()
        answer = self._answer()
        return float(answer["median"]), int(answer["planned"])

    def _answer(self) -> dict[str, float]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit("bench: a planner process ended early; see its log")
        return dict(json.loads(line))

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


@contextmanager
def copied_database() -> Iterator[str]:
    """A copy of this benchmark's database (closed first), as a URL; dropped afterwards."""
    from django.db import connection

    url, settings = os.environ["DATABASE_URL"], connection.settings_dict
    connection.close()
    if connection.vendor == "sqlite":
        copy = Path(settings["NAME"]).with_name("large.sqlite3")
        shutil.copyfile(settings["NAME"], copy)
        yield f"sqlite:///{copy}"
        return
    import psycopg

    name = f"{settings['NAME']}_large"
    server = {
        key.lower(): settings[key] for key in ("HOST", "PORT", "USER", "PASSWORD") if settings[key]
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{settings["NAME"]}"')
    try:
        yield f"{url.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def take_turns(small: Ticker, large: Ticker, ticks: int, blocks: int) -> dict[str, list[float]]:
    """``blocks`` blocks of ticks on each table, who goes first alternating; block medians."""
    medians: dict[str, list[float]] = {"small": [], "large": [], "planned": []}
    for block in range(blocks):
        turns = [("small", small), ("large", large)]
        for side, ticker in turns if block % 2 == 0 else turns[::-1]:
            seconds, planned = ticker.ticks(max(1, ticks // blocks))
            medians[side].append(seconds)
            medians["planned"].append(planned)
    return medians


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--ticks", type=int, default=300)
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--grow", type=int, default=0)
    args = parser.parse_args()
    if args.serve:
        serve(args.grow)
        return
    setup_django()
    from django.db import connection
    from django.utils import timezone

    from tests.factories import announcement

    vendor = connection.vendor
    announcement(now=timezone.now() + timedelta(minutes=1), cron="0 9 * * 1")
    add_announcements(args.small - 1)
    with copied_database() as large_url:
        small = Ticker(os.environ["DATABASE_URL"], 0)
        large = Ticker(large_url, args.large - args.small)
        try:
            medians = take_turns(small, large, args.ticks, args.blocks)
        finally:
            small.stop()
            large.stop()
    _report(vendor, args, medians, (small.scheduled, large.scheduled))


def _report(
    vendor: str, args: argparse.Namespace, medians: dict[str, list[float]], counts: tuple[int, int]
) -> None:
    problems = []
    if counts != (args.small, args.large):
        problems.append(f"{counts[0]} and {counts[1]} announcements scheduled, not both sizes")
    if planned := sum(medians["planned"]):
        problems.append(f"an idle tick planned {planned} occurrences")
    wrong = "; ".join(problems)
    database = "SQLite" if vendor == "sqlite" else "PostgreSQL"
    report(
        Result(
            name=f"idle tick, {args.large} vs {args.small} announcements, {database}",
            value=median(medians["large"]) * 1000,
            baseline=median(medians["small"]) * 1000,
            unit="ms",
            target=1.5,
            compare=RATIO_AT_MOST,
            measures=f"planner ticks with nothing due, large table, {args.blocks} blocks",
            baseline_is="the same ticks with the small table, in turns with the large",
            check=wrong or f"{counts[1]} and {counts[0]} announcements, nothing planned",
            correct=not wrong,
            details={"block_medians_s": {k: medians[k] for k in ("small", "large")}},
            # Here the ratio is slow over fast: the large table's time over the small one's.
            round_ratio=paired_ratio(medians["small"], medians["large"]),
        )
    )


if __name__ == "__main__":
    main()
