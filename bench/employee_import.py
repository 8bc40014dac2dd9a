"""The employee CSV import end to end: ``bulletin import_employees FILE.csv`` as its own OS
process, as a person runs it, timed from start to exit, its peak memory read from the kernel.

Each round imports a file of N valid rows (several departments, locations with their
countries, subdivisions and working weeks, zones given or left to the location, some people
inactive or away) into an empty table, then a second file that changes every one of them (an
update of everyone). The verdicts are absolute, as the issue states them: rows per second
against a floor, and the import process's peak resident memory against a ceiling. After each
import the answer is checked: the number of employees and locations and a sample of rows.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    ROOT,
    VALUE_AT_LEAST,
    VALUE_AT_MOST,
    Result,
    median,
    report,
    setup_django,
)

ROWS_PER_SECOND = 20_000.0
PEAK_RSS_MB = 150.0
HEADER = (
    "email,name,department,location,timezone,country,subdivision,working_week,active,away_until"
)
# (location, zone, country, subdivision, working week)
PLACES = (
    ("London", "Europe/London", "GB", "ENG", "Mon-Fri 09:00-17:30"),
    ("New York", "America/New_York", "US", "NY", "Mon-Fri 09:00-17:00"),
    ("Pune", "Asia/Kolkata", "IN", "MH", "Mon-Fri 09:30-18:30"),
    ("Sydney", "Australia/Sydney", "AU", "NSW", "Mon-Fri 08:30-17:00"),
    ("Berlin", "Europe/Berlin", "DE", "BE", "Mon-Fri 08:00-16:30"),
    ("Dubai", "Asia/Dubai", "AE", "", "Mon-Fri 08:00-17:00"),
    ("Tokyo", "Asia/Tokyo", "JP", "", "Mon-Fri 09:00-18:00"),
)
DEPARTMENTS = ("Engineering", "Sales", "Support", "Finance", "Legal", "People", "Marketing")


def expected(index: int, edition: int) -> tuple[str, ...]:
    """Row ``index`` of a file: email, name, department, location, timezone (empty: the
    location's), country, subdivision, working week, active, away_until. Edition 2 changes
    every person's name and department, and moves a third of them."""
    moved = edition - 1 if index % 3 == 0 else 0
    place = PLACES[(index + moved) % len(PLACES)]
    department = DEPARTMENTS[(index + edition - 1) % len(DEPARTMENTS)]
    name = f"Person {index}" if edition == 1 else f"Person {index} (edition {edition})"
    zone = "" if index % 5 == 0 else place[1]
    active = "no" if index % 50 == 7 else "yes"
    away = f"2027-0{1 + index % 9}-{1 + index % 28:02}" if index % 10 == 3 else ""
    email = f"person{index}@example.com"
    return (email, name, department, place[0], zone, *place[2:], active, away)


def write_file(path: Path, rows: int, edition: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER.split(","))
        for index in range(rows):
            writer.writerow(expected(index, edition))


@dataclass(frozen=True)
class Run:
    """One ``bulletin import_employees`` process: wall and CPU seconds (the CPU time says how
    much of the wall time was the import's own work on a shared machine), peak RSS in MB, and
    the first line it printed (or its error)."""

    seconds: float
    cpu_seconds: float
    peak_mb: float
    said: str


def import_file(path: Path) -> Run:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bulletin.settings"}
    command = [sys.executable, "-m", "bulletin", "import_employees", str(path)]
    out, err = path.with_suffix(".out"), path.with_suffix(".err")
    with out.open("w") as stdout, err.open("w") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stdout, stderr=stderr)
        # wait4 gives this child's own resource usage: its peak resident memory, in KiB.
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    lines = out.read_text().splitlines()
    said = lines[0] if lines else ""
    if os.waitstatus_to_exitcode(status) or not lines:
        said = f"failed: {err.read_text()[-500:]}"
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, said)


def problem(rows: int, edition: int, said: str) -> str:
    """'' when the table holds exactly edition ``edition`` of the file."""
    from bulletin.domain.locations import Location
    from bulletin.domain.models import Employee

    counts = {"created": rows, "updated": 0} if edition == 1 else {"created": 0, "updated": rows}
    summary = f"imported: {counts['created']} created, {counts['updated']} updated, 0 unchanged"
    if said != summary:
        return f"edition {edition}: the command said {said!r}, not {summary!r}"
    if (found := Employee.objects.count()) != rows:
        return f"edition {edition}: {found} employees, not {rows}"
    if Location.objects.count() != min(rows, len(PLACES)):
        return f"edition {edition}: {Location.objects.count()} locations"
    for index in sorted({0, 3, 7, rows // 2, rows - 1}):
        wanted = expected(index, edition)
        stored = Employee.objects.get(email=wanted[0])
        zone = wanted[4] or next(place[1] for place in PLACES if place[0] == wanted[3])
        away = stored.away_until.isoformat() if stored.away_until else ""
        row = (stored.name, stored.department, stored.location_id, stored.timezone, away)
        if row != (*wanted[1:4], zone, wanted[9]) or stored.active != (wanted[8] == "yes"):
            return f"edition {edition}, row {index}: stored {row}, {stored.active}; file {wanted}"
    return ""


def clear() -> None:
    """An empty table again, and a file as small as a new one's."""
    from django.db import connection

    from bulletin.domain.locations import Location
    from bulletin.domain.models import Employee

    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {Employee._meta.db_table}")
        cursor.execute(f"DELETE FROM {Location._meta.db_table}")
        if connection.vendor == "sqlite":
            cursor.execute("VACUUM")
    connection.close()  # the import's own process is the database's only user while timed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    setup_django()
    from django.db import connection

    scratch = Path(os.environ["BULLETIN_VAR_DIR"])
    files = {edition: scratch / f"employees-{edition}.csv" for edition in (1, 2)}
    for edition, path in files.items():
        write_file(path, args.rows, edition)
    tiny = scratch / "employees-tiny.csv"
    write_file(tiny, 1, 1)
    runs: dict[int, list[Run]] = {1: [], 2: []}
    problems: list[str] = []
    for _ in range(args.rounds):
        clear()
        for edition, path in files.items():
            runs[edition].append(run := import_file(path))
            problems.append(problem(args.rows, edition, run.said))
            connection.close()
    clear()
    start_peak = import_file(tiny).peak_mb  # the same command, one row: Python and Django alone
    _report(args, runs, start_peak, "; ".join(filter(None, problems)))


def _report(
    args: argparse.Namespace, runs: dict[int, list[Run]], start_peak: float, wrong: str
) -> None:
    check = wrong or (
        f"{args.rows} employees and {min(args.rows, len(PLACES))} locations after each import, "
        f"sampled rows as in the file, {2 * args.rounds} imports"
    )
    what = {1: "new", 2: "all changed"}
    for edition, done in runs.items():
        took = [run.seconds for run in done]
        report(
            Result(
                name=f"employee import {args.rows} rows ({what[edition]}), SQLite",
                value=args.rows / median(took),
                baseline=ROWS_PER_SECOND,
                unit="rows/s",
                target=ROWS_PER_SECOND,
                compare=VALUE_AT_LEAST,
                measures="`bulletin import_employees FILE.csv` as its own process, start to exit",
                baseline_is="the issue's absolute floor (no contender)",
                check=check,
                correct=not wrong,
                details={"seconds": took, "cpu_seconds": [run.cpu_seconds for run in done]},
            )
        )
    report(
        Result(
            name=f"employee import {args.rows} rows, SQLite: peak RSS",
            value=max(run.peak_mb for done in runs.values() for run in done),
            baseline=start_peak,
            unit="MB",
            target=PEAK_RSS_MB,
            compare=VALUE_AT_MOST,
            measures="the import process's peak resident memory, the highest of every import",
            baseline_is="the same command importing a one-row file (Python and Django alone)",
            check=check,
            correct=not wrong,
        )
    )


if __name__ == "__main__":
    main()
