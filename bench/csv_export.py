"""HR's CSV export of one announcement's deliveries, against a raw SELECT written with ``csv``.

Bulletin's side is the real view end to end: a logged-in request through Django's middleware
to ``/hr/{id}/deliveries.csv``, the whole streamed response consumed as bytes. The baseline is
the least work that yields the same rows: a plain ``sqlite3`` connection running one SELECT of
the same columns with the same joins, written by ``csv.writer`` to /dev/null — unsorted, no
neutralising, no recipient wording, times as stored. Rounds alternate the two;
the ratio is the median of the rounds' own ratios.

Peak memory is the export's alone: a process of its own (Django loaded, one export of every
row) reports its high-water mark, which must stay flat — well under the file's size.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

from bench.common import (
    RATIO_AT_LEAST,
    ROOT,
    VALUE_AT_MOST,
    Result,
    median,
    paired_ratio,
    peak_rss_mb,
    report,
    seed_employees,
    setup_django,
)

OCCURRENCES = 10  # one announcement that fired ten times to everyone, as in issue 17
HEADER = b"fire_at,recipient,channel,state,attempts,last_error,sent_at,hold_reason\r\n"

# The baseline's SELECT: the export's rows and joins, none of its wording, not even its order
# (sorting the rows by fire time costs the export a fifth of its time; the baseline skips it).
RAW_SELECT = (
    "SELECT o.fire_at, e.email, p.name, d.channel, d.state, d.attempts, d.last_error, "
    "d.sent_at, d.hold_reason FROM bulletin_delivery d "
    "JOIN bulletin_occurrence o ON o.id = d.occurrence_id "
    "LEFT JOIN bulletin_employee e ON e.id = d.employee_id "
    "LEFT JOIN bulletin_place p ON p.id = d.place_id "
    "WHERE o.announcement_id = ?"
)

# A realistic mix by employee id: most sent (each at its own microsecond), some opted out,
# failed (a few with an error that looks like a formula) or held for working hours.
_STATE = (
    "CASE WHEN e.id % 100 = 0 THEN 'skipped' WHEN e.id % 50 = 1 THEN 'failed' "
    "WHEN e.id % 100 = 7 THEN 'held' ELSE 'sent' END"
)
_ERROR = (
    "CASE WHEN e.id % 100 = 0 THEN 'opted out of email' WHEN e.id % 200 = 1 "
    "THEN '=HYPERLINK(\"http://example.com\")' WHEN e.id % 50 = 1 "
    "THEN '550 5.1.1 user unknown' ELSE '' END"
)
_SENT_AT = (
    "CASE WHEN e.id % 100 IN (0, 7) OR e.id % 50 = 1 THEN NULL "
    "ELSE strftime('%Y-%m-%d %H:%M:', o.fire_at) "
    "|| printf('%02d.%06d', e.id % 60, 1 + e.id % 999998) END"
)


def seed(rows: int) -> tuple[Any, int]:
    """One announcement with OCCURRENCES occurrences, each to everyone by email and to one
    Slack channel: about ``rows`` deliveries, inserted by the database. (announcement, count)"""
    from django.db import connection
    from django.utils import timezone

    from bulletin.domain.models import Delivery, Occurrence, OccurrenceState, Place
    from tests.factories import announcement

    people = max(rows // OCCURRENCES - 1, 1)
    seed_employees(people)
    now = timezone.now().replace(microsecond=0)
    item = announcement(now=now, cron="0 9 * * 1")
    place = Place.objects.create(name="-announcements", channel="slack", target="C0000001")
    for week in range(OCCURRENCES):
        Occurrence.objects.create(
            announcement=item,
            zone="Europe/London",
            fire_at=now - timedelta(days=7 * (OCCURRENCES - week)),
            state=OccurrenceState.FANNED_OUT,
        )
    stamp = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bulletin_delivery (occurrence_id, employee_id, place_id, channel, "
            "state, attempts, due_at, last_error, sent_at, hold_reason, created_at, updated_at) "
            f"SELECT o.id, e.id, NULL, 'email', {_STATE}, CASE WHEN e.id % 50 = 1 THEN 3 "
            f"ELSE 1 END, o.fire_at, {_ERROR}, {_SENT_AT}, CASE WHEN e.id % 100 = 7 "
            "THEN 'after working hours' ELSE '' END, %s, %s FROM bulletin_occurrence o, "
            "bulletin_employee e WHERE o.announcement_id = %s ORDER BY o.fire_at, e.id",
            [stamp, stamp, item.pk],
        )
        cursor.execute(
            "INSERT INTO bulletin_delivery (occurrence_id, place_id, channel, state, attempts, "
            "due_at, last_error, sent_at, created_at, updated_at) SELECT o.id, %s, 'slack', "
            "'sent', 1, o.fire_at, '', o.fire_at, %s, %s FROM bulletin_occurrence o "
            "WHERE o.announcement_id = %s",
            [place.pk, stamp, stamp, item.pk],
        )
    count = Delivery.objects.filter(occurrence__announcement=item).count()
    return item, count


def hr_client() -> Any:
    """A Django test client logged in as someone who may see deliveries."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import setup_test_environment

    setup_test_environment()  # lets the client's "testserver" host in
    name = f"bench-hr-{os.getpid()}"  # the parent and the memory child each log in
    user = get_user_model().objects.create_superuser(name, f"{name}@example.com", None)
    client = Client()
    client.force_login(user)
    return client


def export(client: Any, announcement_id: int) -> tuple[int, bytes]:
    """The export through the view, every byte consumed: (lines, first two lines)."""
    response = client.get(f"/hr/{announcement_id}/deliveries.csv", secure=True)
    if response.status_code != 200 or not response.streaming:
        raise SystemExit(f"csv-export: the view answered {response.status_code}")
    lines, head = 0, b""
    for piece in response.streaming_content:
        lines += piece.count(b"\n")
        if len(head) < 400:
            head += piece[:400]
    response.close()
    return lines, b"".join(head.splitlines(keepends=True)[:2])


def baseline(path: str, announcement_id: int) -> None:
    """The same rows by plain sqlite3 and csv, written to /dev/null."""
    database = sqlite3.connect(path)
    try:
        with open(os.devnull, "w", encoding="utf-8", newline="") as sink:
            csv.writer(sink).writerows(database.execute(RAW_SELECT, [announcement_id]))
    finally:
        database.close()


def baseline_rows(path: str, announcement_id: int) -> int:
    """How many rows the baseline's SELECT yields (counted once, untimed)."""
    database = sqlite3.connect(path)
    try:
        found = database.execute(f"SELECT count(*) FROM ({RAW_SELECT})", [announcement_id])
        return int(found.fetchone()[0])
    finally:
        database.close()


def expected_head(item: Any) -> bytes:
    """The header and the first row as the export must write them, from the ORM."""
    from bulletin.domain.models import Delivery

    first = (
        Delivery.objects.filter(occurrence__announcement=item)
        .select_related("occurrence", "employee")
        .order_by("occurrence__fire_at", "occurrence_id", "id")
        .first()
    )
    assert first is not None and first.employee is not None
    sent = first.sent_at.isoformat() if first.sent_at else ""
    error = first.last_error
    error = "'" + error if error[:1] in ("=", "+", "-", "@", "\t", "\r") else error
    cells = [first.occurrence.fire_at.isoformat(), first.employee.email, "email", first.state]
    cells += [str(first.attempts), error, sent, first.hold_reason]
    line = io.StringIO()
    csv.writer(line).writerow(cells)
    return HEADER + line.getvalue().encode()


def check(found: tuple[int, bytes], count: int, head: bytes) -> str:
    """'' when the export had a header and one line per delivery, the first one right."""
    lines, first = found
    if lines != count + 1:
        return f"expected {count} rows and a header, got {lines} lines"
    if first != head:
        return f"expected the export to begin {head!r}, got {first!r}"
    return ""


def rss_of_one_export(announcement_id: int) -> dict[str, Any]:
    """Run one export in a new process of this module; its peak RSS and lines."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.csv_export", f"--rss-of={announcement_id}"],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def measure_rss(announcement_id: int) -> None:
    """In the child process: one export through the view, then the peak as JSON on stdout."""
    client = hr_client()
    before = peak_rss_mb()
    lines, head = export(client, announcement_id)
    found = {"lines": lines, "head": head.decode(), "peak_mb": peak_rss_mb(), "before_mb": before}
    json.dump(found, sys.stdout)


def database_path() -> str:
    from django.db import connection

    if connection.vendor != "sqlite":
        raise SystemExit("csv-export: the baseline is plain sqlite3; run it on SQLite")
    return str(connection.settings_dict["NAME"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rss-of", type=int, default=0, help="(internal) one export's RSS")
    args = parser.parse_args()
    setup_django()
    path = database_path()
    if args.rss_of:
        measure_rss(args.rss_of)
        return
    item, count = seed(args.rows)
    head = expected_head(item)
    memory = rss_of_one_export(item.pk)  # first: it also warms the page cache for both
    problems = [check((memory["lines"], memory["head"].encode()), count, head)]
    if baseline_rows(path, item.pk) != count:
        problems.append(f"the baseline's SELECT does not yield the {count} deliveries")
    times = _rounds(args.rounds, path, item.pk, expect=(count, head), problems=problems)
    _report(count, args.rounds, times, problems, memory)


def _rounds(
    rounds: int, path: str, announcement_id: int, expect: tuple[int, bytes], problems: list[str]
) -> dict[str, list[float]]:
    """Paired rounds, who goes first alternating: each side's seconds per round."""
    client = hr_client()
    client.get("/hr/0/deliveries.csv")  # a 404 that loads the URLs and views, untimed
    times: dict[str, list[float]] = {"ours": [], "raw": []}
    for round_number in range(rounds):
        order = ["ours", "raw"] if round_number % 2 == 0 else ["raw", "ours"]
        for name in order:
            started = time.perf_counter()
            if name == "ours":
                found = export(client, announcement_id)
            else:
                baseline(path, announcement_id)
            times[name].append(time.perf_counter() - started)
            if name == "ours":
                problems.append(check(found, *expect))
    return times


def _report(
    count: int,
    rounds: int,
    times: dict[str, list[float]],
    problems: list[str],
    memory: dict[str, Any],
) -> None:
    wrong = "; ".join(filter(None, problems))
    check_text = wrong or f"{count} rows and the header in each of {rounds + 1} exports"
    report(
        Result(
            name=f"CSV export of {count} deliveries, SQLite",
            value=count / median(times["ours"]),
            baseline=count / median(times["raw"]),
            unit="rows/s",
            target=0.3,
            compare=RATIO_AT_LEAST,
            measures="GET /hr/{id}/deliveries.csv through the view, the whole stream consumed",
            baseline_is="plain sqlite3 SELECT of the same rows (same joins, order) to csv.writer",
            check=check_text,
            correct=not wrong,
            details={"ours_s": times["ours"], "baseline_s": times["raw"]},
            round_ratio=paired_ratio(times["ours"], times["raw"]),
        )
    )
    report(
        Result(
            name=f"CSV export of {count} deliveries: peak RSS",
            value=memory["peak_mb"],
            baseline=memory["before_mb"],
            unit="MB",
            target=120.0,
            compare=VALUE_AT_MOST,
            measures="peak resident memory of a process that ran one export of every row",
            baseline_is="its peak before the export (Django loaded, logged in)",
            check=check_text,
            correct=not wrong,
        )
    )


if __name__ == "__main__":
    main()
