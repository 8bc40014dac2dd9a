"""Fan-out of one occurrence to every employee × one channel, against the fastest plain insert.

The baseline inserts the very same rows into the very same table (same indexes, same
constraints) with the driver's fastest bulk path — ``sqlite3`` ``executemany`` or psycopg
``COPY`` — from employee ids already in memory, so it pays for nothing but the insert.
Bulletin's :func:`fan_out` starts from the announcement and decides everything (audience,
opt-outs, states) inside the database. Rounds alternate the two; medians are compared.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from bench.common import (
    RATIO_AT_LEAST,
    VALUE_AT_MOST,
    Result,
    current_rss_mb,
    median,
    paired_ratio,
    peak_rss_mb,
    report,
    seed_employees,
    settle,
    setup_django,
    timed,
)

_COLUMNS = (
    "occurrence_id, employee_id, place_id, channel, state, attempts, due_at, last_error, "
    "created_at, updated_at"
)


def _rows(
    occurrence_id: int, audience: list[tuple[int, bool]], now: Any
) -> Iterator[tuple[Any, ...]]:
    for employee_id, opted_out in audience:
        state, reason = ("skipped", "opted out of email") if opted_out else ("pending", "")
        yield (occurrence_id, employee_id, None, "email", state, 0, now, reason, now, now)


def audience_in_memory() -> list[tuple[int, bool]]:
    """(employee id, opted out of email) for everyone: the baseline's rows, computed for free."""
    from bulletin.domain.models import ChannelOptOut, Employee

    opted_out = set(
        ChannelOptOut.objects.filter(channel="email").values_list("employee_id", flat=True)
    )
    return [
        (pk, pk in opted_out) for pk in Employee.objects.order_by("pk").values_list("pk", flat=True)
    ]


def seed_opt_outs(every: int) -> int:
    """Every ``every``-th employee opts out of email, so fan-out has opt-outs to decide."""
    from django.db import connection
    from django.utils import timezone

    from bulletin.domain.models import ChannelOptOut, Employee

    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ChannelOptOut._meta.db_table} (employee_id, channel, created_at) "
            f"SELECT id, 'email', %s FROM {Employee._meta.db_table} WHERE id %% %s = 0",
            [connection.ops.adapt_datetimefield_value(timezone.now()), every],
        )
    return ChannelOptOut.objects.count()


def plain_insert(occurrence_id: int, audience: list[tuple[int, bool]], now: datetime) -> None:
    from django.db import connection, transaction

    from bulletin.domain.models import Delivery

    table = Delivery._meta.db_table
    with transaction.atomic():
        raw = connection.connection  # the driver's own connection, no Django in between
        if connection.vendor == "postgresql":
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY {table} ({_COLUMNS}) FROM STDIN") as copy,
            ):
                for row in _rows(occurrence_id, audience, now):
                    copy.write_row(row)
        else:
            stamp = connection.ops.adapt_datetimefield_value(now)
            marks = ", ".join("?" * 10)
            raw.executemany(
                f"INSERT INTO {table} ({_COLUMNS}) VALUES ({marks})",
                _rows(occurrence_id, audience, stamp),
            )


def verify(occurrence_id: int, expected: int, skipped: int) -> str:
    """'' when the occurrence has one row per employee, ``skipped`` of them opted out."""
    from django.db.models import Count, Q

    from bulletin.domain.models import Delivery

    rows = Delivery.objects.filter(occurrence_id=occurrence_id)
    found = rows.aggregate(
        rows=Count("id"),
        people=Count("employee_id", distinct=True),
        skipped=Count("id", filter=Q(state="skipped")),
    )
    if found != {"rows": expected, "people": expected, "skipped": skipped}:
        return f"expected {expected} rows for {expected} people, {skipped} skipped; found {found}"
    return ""


def clear(occurrence_id: int) -> None:
    """Remove the rows again and vacuum, so that every run inserts into the same table."""
    from django.db import connection

    from bulletin.domain.models import Delivery

    # One statement: nothing refers to these rows yet (no attempts, no inbox items), so the
    # ORM's collection of related rows would only cost time between runs.
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {Delivery._meta.db_table} WHERE occurrence_id = %s", [occurrence_id]
        )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {Delivery._meta.db_table}")
    settle()


def new_occurrence(announcement: Any, now: datetime) -> Any:
    from bulletin.domain.models import Occurrence, OccurrenceState

    earlier = Occurrence.objects.filter(announcement=announcement).count() + 1
    fire_at = now.replace(microsecond=0) - timedelta(days=7 * earlier)
    return Occurrence.objects.create(
        announcement=announcement,
        zone="Europe/London",
        fire_at=fire_at,
        state=OccurrenceState.PLANNED,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    setup_django()
    from django.db import connection
    from django.utils import timezone

    from bulletin.dispatch.fanout import fan_out
    from tests.factories import announcement

    now = timezone.now()
    seed_employees(args.rows)
    skipped = seed_opt_outs(every=100)
    item = announcement(now=now, cron="0 9 * * 1")
    audience = audience_in_memory()
    rss_before = current_rss_mb()
    contenders: dict[str, Callable[[Any], object]] = {
        "ours": lambda occurrence: fan_out(occurrence, now),
        "plain": lambda occurrence: plain_insert(occurrence.pk, audience, now),
    }
    times: dict[str, list[float]] = {"ours": [], "plain": []}
    problems: list[str] = []
    # One untimed run each first: the first insert of a process pays for cold catalog, plan and
    # buffer caches, and whoever went first would carry it in their figures. The peak memory
    # is read after Bulletin's, before the baseline's.
    problems.append(_run_once(contenders["ours"], item, now, args.rows, skipped)[1])
    rss_after_fan_out = peak_rss_mb()
    problems.append(_run_once(contenders["plain"], item, now, args.rows, skipped)[1])
    for round_number in range(args.rounds):
        # Alternate who goes first, so neither always inherits the other's cache or vacuum debt.
        order = ["ours", "plain"] if round_number % 2 == 0 else ["plain", "ours"]
        for name in order:
            seconds, problem = _run_once(contenders[name], item, now, args.rows, skipped)
            times[name].append(seconds)
            problems.append(problem)
    _report(
        connection.vendor,
        args,
        times["ours"],
        times["plain"],
        problems,
        rss_before,
        rss_after_fan_out,
    )


def _run_once(
    contender: Callable[[Any], object], item: Any, now: datetime, rows: int, skipped: int
) -> tuple[float, str]:
    """One timed insert into a new occurrence: its seconds, and what was wrong with its rows."""
    occurrence = new_occurrence(item, now)
    seconds = timed(partial(contender, occurrence))
    problem = verify(occurrence.pk, rows, skipped)
    clear(occurrence.pk)
    return seconds, problem


def _report(
    vendor: str,
    args: argparse.Namespace,
    ours: list[float],
    plain: list[float],
    problems: list[str],
    rss_before: float,
    rss_peak: float,
) -> None:
    wrong = "; ".join(filter(None, problems))
    check = wrong or f"{args.rows} rows per run, one per employee, {2 * args.rounds + 2} runs"
    database = "SQLite" if vendor == "sqlite" else "PostgreSQL"
    baseline_is = "sqlite3 executemany" if vendor == "sqlite" else "psycopg COPY"
    report(
        Result(
            name=f"fan-out {args.rows} × 1 channel, {database}",
            value=args.rows / median(ours),
            baseline=args.rows / median(plain),
            unit="rows/s",
            target=1.0,
            compare=RATIO_AT_LEAST,
            measures="fan_out() of one occurrence: audience, opt-outs and rows in one statement",
            baseline_is=f"{baseline_is} of the same rows into the same table",
            check=check,
            correct=not wrong,
            details={"ours_s": ours, "baseline_s": plain},
            round_ratio=paired_ratio(ours, plain),
        )
    )
    if vendor == "sqlite":
        report(
            Result(
                name=f"fan-out {args.rows}, SQLite: peak RSS",
                value=rss_peak,
                baseline=rss_before,
                unit="MB",
                target=150.0,
                compare=VALUE_AT_MOST,
                measures="the process's peak resident memory after its first fan-out",
                baseline_is="resident memory before it (Django loaded, employees seeded)",
                check=check,
                correct=not wrong,
            )
        )


if __name__ == "__main__":
    main()
