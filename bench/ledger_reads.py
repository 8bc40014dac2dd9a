"""What HR and monitoring read, at a small and at a large ledger: the cost must not grow.

Five reads, each as its reader meets it: the HR dashboard ``/hr/`` and an announcement's page
``/hr/{id}/`` (a logged-in superuser, through Django's test client: the whole view, templates
included), ``/metrics`` (Prometheus' scrape), the admin's delivery list
``/admin/bulletin/delivery/``, and ``bulletin status --json`` (the command, in-process, so that
starting Python does not swamp the timing). The baseline is the same read over the small
ledger; the value is the read over the large one; the target is the large one's time at most
1.5× the small one's.

Each ledger lives in a database of its own, filled once by a process of its own: employees,
one announcement over email firing ten times to everyone (Bulletin's own ``fan_out``), then —
the benchmark's setup, not a product path — one raw ``UPDATE`` settling the deliveries (most
``sent``, 1 % ``failed``, 1 % ``unknown``, 1 % left ``pending``) and one ``INSERT … SELECT``
writing the attempt each settled delivery would have had, after which the ledger rebuilds its
kept counts (``counts.recount()``). The two processes then take turns, each read in each round,
who goes first alternating, so that a slow minute of the machine lands on both sides of a
round's ratio.

Every answer is checked against a ``GROUP BY`` of the ledger itself, taken after setup: each
read answered 200, the dashboard and the announcement's page show the sent and failed counts
HR should see, ``/metrics`` and ``status`` count every delivery in its state.

By hand at other sizes: ``BENCH_LEDGER_SMALL`` and ``BENCH_LEDGER_LARGE`` (deliveries) override
the sizes the runner passes, e.g. ``BENCH_LEDGER_LARGE=10000000 make bench
BENCH=ledger-reads-sqlite``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from io import StringIO
from typing import Any

from bench.common import (
    RATIO_AT_MOST,
    ROOT,
    Result,
    median,
    paired_ratio,
    report,
    seed_employees,
    settle,
    setup_django,
)
from bench.planner import copied_database

OCCURRENCES = 10  # one announcement firing ten times to everyone
ADMIN_DELIVERIES = "/admin/bulletin/delivery/"
# A read slower than this (at either size, in its warm-up) is not repeated in rounds: its one
# warm-up run on each ledger is its figure, so that a read that grew a hundredfold cannot
# hold the benchmark up for an hour.
PATIENCE_S = 10.0
# A read of a few milliseconds varies by twice that with the machine's other work: each turn
# repeats it for about this long and takes the median.
BLOCK_S = 0.5

# (key, the read as named in the table)
READS = (
    ("dashboard", "HR dashboard /hr/"),
    ("detail", "announcement page /hr/{id}/"),
    ("metrics", "/metrics"),
    ("admin", "admin delivery list"),
    ("status", "bulletin status --json"),
)


# --- Setting up one ledger (in its serving process) ---------------------------------------


def populate(deliveries: int) -> int:
    """Fill this database with ``deliveries`` deliveries of one announcement; its id."""
    from django.utils import timezone

    from bulletin.dispatch.fanout import fan_out
    from tests.factories import announcement

    now = timezone.now()
    seed_employees(deliveries // OCCURRENCES)
    item = announcement(now=now, cron="0 9 * * 1", title="Weekly update")
    for weeks in range(OCCURRENCES, 0, -1):
        fan_out(_occurrence(item, now - timedelta(weeks=weeks)), now)
    _settle_deliveries(now)
    _record_attempts()
    # The lead's kept summary, rebuilt from the deliveries the raw statements above moved.
    from bulletin.dispatch.ledger import counts

    counts.recount()
    _analyse()
    return int(item.pk)


def _occurrence(item: Any, fire_at: datetime) -> Any:
    from bulletin.domain.models import Occurrence, OccurrenceState

    return Occurrence.objects.create(
        announcement=item,
        zone="Europe/London",
        fire_at=fire_at.replace(microsecond=0),
        state=OccurrenceState.PLANNED,
    )


def _settle_deliveries(now: datetime) -> None:
    """Most deliveries sent, 1 % each failed and unknown, 1 % still pending: one statement."""
    from django.db import connection

    from bulletin.domain.models import Delivery

    stamp = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Delivery._meta.db_table} SET "
            "state = CASE id %% 100 WHEN 0 THEN 'failed' WHEN 1 THEN 'unknown' ELSE 'sent' END, "
            "sent_at = CASE WHEN id %% 100 > 1 THEN %s END, attempts = 1, "
            "last_error = CASE id %% 100 WHEN 0 THEN '550 no such user' ELSE '' END "
            "WHERE id %% 100 <> 2",
            [stamp],
        )


def _record_attempts() -> None:
    """The one attempt each settled delivery would have: what /metrics' histograms read."""
    from django.db import connection

    from bulletin.domain.models import Attempt, Delivery

    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Attempt._meta.db_table} (delivery_id, number, started_at, "
            "finished_at, outcome, error) SELECT id, 1, updated_at, updated_at, state, "
            f"last_error FROM {Delivery._meta.db_table} WHERE state <> 'pending'"
        )


def _analyse() -> None:
    """PostgreSQL's statistics brought up to date (as autovacuum would), then a checkpoint."""
    from django.db import connection

    from bulletin.domain.models import Attempt, Delivery, Employee

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for model in (Delivery, Attempt, Employee):
                cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
    settle()


def truth() -> dict[str, int]:
    """Deliveries by state, counted from the ledger itself: what every read must agree with."""
    from django.db import connection

    from bulletin.domain.models import Delivery

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT state, COUNT(*) FROM {Delivery._meta.db_table} GROUP BY state")
        return {state: int(n) for state, n in cursor.fetchall()}


# --- The five reads, each with its check ---------------------------------------------------


@dataclass(frozen=True)
class Read:
    perform: Callable[[], Any]
    check: Callable[[Any], str]  # '' when the answer is right


def reads(announcement_id: int, expected: dict[str, int]) -> dict[str, Read]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_superuser("bench-hr", "hr@example.com", None)
    host = next(iter(settings.ALLOWED_HOSTS), "localhost")
    hr = Client(HTTP_HOST=host)
    hr.force_login(user)
    scraper, scrape = Client(HTTP_HOST=host), _metrics_auth()  # Prometheus: no session
    sent, failed = expected.get("sent", 0), expected.get("failed", 0)
    return {
        "dashboard": Read(
            lambda: hr.get("/hr/"), _page_showing(f'class="count count-sent">{sent} sent<')
        ),
        "detail": Read(
            lambda: hr.get(f"/hr/{announcement_id}/"), _page_showing(f"Retry {failed} failed")
        ),
        "metrics": Read(
            lambda: scraper.get("/metrics", headers=scrape), lambda r: _metrics_problem(r, expected)
        ),
        "admin": Read(lambda: hr.get(ADMIN_DELIVERIES), _page_showing("@example.com")),
        "status": Read(_status, lambda found: _status_problem(found, expected)),
    }


def _metrics_auth() -> dict[str, str]:
    from bulletin.conf import secret
    from bulletin.interfaces.probes import METRICS_TOKEN

    token = secret(METRICS_TOKEN)
    return {"Authorization": f"Bearer {token}"} if token else {}


def _page_showing(text: str) -> Callable[[Any], str]:
    def check(response: Any) -> str:
        if response.status_code != 200:
            return f"{response.request['PATH_INFO']} answered {response.status_code}"
        if text.lower() not in response.content.decode().lower():
            return f"{response.request['PATH_INFO']} does not show {text!r}"
        return ""

    return check


_GAUGE = re.compile(r'^bulletin_deliveries\{[^}]*state="(\w+)"[^}]*\} (\S+)$', re.MULTILINE)


def _metrics_problem(response: Any, expected: dict[str, int]) -> str:
    if response.status_code != 200:
        return f"/metrics answered {response.status_code}"
    found: dict[str, int] = {}
    for state, value in _GAUGE.findall(response.content.decode()):
        found[state] = found.get(state, 0) + int(float(value))
    return _counts_problem("/metrics", found, expected)


def _status() -> dict[str, Any]:
    from django.core.management import call_command

    out = StringIO()
    call_command("status", "--json", stdout=out)
    return dict(json.loads(out.getvalue()))


def _status_problem(found: dict[str, Any], expected: dict[str, int]) -> str:
    return _counts_problem("status --json", found["deliveries"], expected)


def _counts_problem(read: str, found: dict[str, int], expected: dict[str, int]) -> str:
    shown = {state: n for state, n in found.items() if n}
    if shown != expected:
        return f"{read} counted {shown}, the ledger holds {expected}"
    return ""


def run_read(read: Read, times: int) -> tuple[float, str]:
    """The median seconds of at least ``times`` runs of a read (more, up to a few dozen, while
    they take under BLOCK_S together), and what was wrong with any answer."""
    seconds: list[float] = []
    problems = set()
    while len(seconds) < times or (sum(seconds) < BLOCK_S and len(seconds) < 40):
        started = time.perf_counter()
        answer = read.perform()
        seconds.append(time.perf_counter() - started)
        problems.add(read.check(answer))
    return median(seconds), "; ".join(sorted(filter(None, problems)))


def serve(deliveries: int) -> None:
    """A reading process: fill its ledger, warm every read, then answer each line
    "READ TIMES" with that read's median seconds and any problem."""
    setup_django()
    announcement_id = populate(deliveries)
    expected = truth()
    by_key = reads(announcement_id, expected)
    warm = {key: run_read(read, 1) for key, read in by_key.items()}
    ready = {"deliveries": sum(expected.values()), "warm": warm}
    print(json.dumps(ready), flush=True)
    for line in sys.stdin:
        key, times = line.split()
        seconds, problem = run_read(by_key[key], int(times))
        print(json.dumps({"median": seconds, "problem": problem}), flush=True)


# --- The comparison (the benchmark's own process) -----------------------------------------


class Reader:
    """One serving process, over one ledger."""

    def __init__(self, database_url: str, deliveries: int) -> None:
        command = [sys.executable, "-m", "bench.ledger_reads", "--serve", str(deliveries)]
        env = {**os.environ, "DATABASE_URL": database_url}
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def ready(self) -> dict[str, Any]:
        return self._answer()

    def read(self, key: str, times: int) -> tuple[float, str]:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{key} {times}\n")
        self.process.stdin.flush()
        answer = self._answer()
        return float(answer["median"]), str(answer["problem"])

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit("bench: a ledger-reading process ended early; see its log")
        return dict(json.loads(line))

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=120)


@dataclass
class Rounds:
    small: dict[str, list[float]]
    large: dict[str, list[float]]
    problems: dict[str, set[str]]
    once: set[str]  # reads timed by their warm-up alone


def from_warm_up(setup: dict[str, dict[str, Any]]) -> Rounds:
    """The warm-up's problems; its times for the reads too slow to repeat."""
    found = Rounds({k: [] for k, _ in READS}, {k: [] for k, _ in READS}, {}, set())
    for key, _ in READS:
        (small_s, small_problem), (large_s, large_problem) = (
            setup[side]["warm"][key] for side in ("small", "large")
        )
        found.problems[key] = {small_problem, large_problem}
        if max(small_s, large_s) > PATIENCE_S:
            found.once.add(key)
            found.small[key].append(small_s)
            found.large[key].append(large_s)
    return found


def take_turns(small: Reader, large: Reader, found: Rounds, rounds: int, times: int) -> None:
    """Every read on each ledger in every round, who goes first alternating."""
    for number in range(rounds):
        for index, (key, _) in enumerate(READS):
            if key in found.once:
                continue
            turns = [(found.small, small), (found.large, large)]
            for side, reader in turns if (number + index) % 2 == 0 else turns[::-1]:
                seconds, problem = reader.read(key, times)
                side[key].append(seconds)
                found.problems[key].add(problem)


def sizes(args: argparse.Namespace) -> tuple[int, int]:
    """The runner's sizes, unless overridden by hand (BENCH_LEDGER_SMALL / _LARGE)."""
    small = int(os.environ.get("BENCH_LEDGER_SMALL") or args.small)
    large = int(os.environ.get("BENCH_LEDGER_LARGE") or args.large)
    return small, large


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--times", type=int, default=3, help="runs of a read per round (median)")
    parser.add_argument("--serve", type=int, default=None, metavar="DELIVERIES")
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    setup_django()
    from django.db import connection

    vendor = connection.vendor
    small_size, large_size = sizes(args)
    with copied_database() as large_url:
        # Both fill their ledgers at once (two databases, two cores), then take turns.
        small = Reader(os.environ["DATABASE_URL"], small_size)
        large = Reader(large_url, large_size)
        try:
            setup = {"small": small.ready(), "large": large.ready()}
            found = from_warm_up(setup)
            take_turns(small, large, found, args.rounds, args.times)
        finally:
            small.stop()
            large.stop()
    _report(vendor, (small_size, large_size), setup, found)


def _report(
    vendor: str, sizes: tuple[int, int], setup: dict[str, dict[str, Any]], found: Rounds
) -> None:
    database = "SQLite" if vendor == "sqlite" else "PostgreSQL"
    held = (setup["small"]["deliveries"], setup["large"]["deliveries"])
    general = [f"the ledgers hold {held[0]} and {held[1]} deliveries"] if held != sizes else []
    for key, label in READS:
        wrong = "; ".join(general + sorted(filter(None, found.problems[key])))
        once = f"; timed once, by its warm-up (over {PATIENCE_S:g} s)" if key in found.once else ""
        report(
            Result(
                name=f"{label}, {_short(sizes[1])} vs {_short(sizes[0])}, {database}",
                value=median(found.large[key]) * 1000,
                baseline=median(found.small[key]) * 1000,
                unit="ms",
                target=1.5,
                compare=RATIO_AT_MOST,
                measures=f"{label} over {sizes[1]} deliveries (one announcement, ten fires)",
                baseline_is=f"the same read over {sizes[0]} deliveries, in turns with the large",
                check=wrong or f"{held[1]} and {held[0]} deliveries; counts as the ledger{once}",
                correct=not wrong,
                details={"round_medians_s": {"small": found.small[key], "large": found.large[key]}},
                # Slow over fast: the large ledger's time over the small one's, round by round.
                round_ratio=paired_ratio(found.small[key], found.large[key]),
            )
        )


def _short(deliveries: int) -> str:
    """10000 -> '10k', 1000000 -> '1M': names that fit the table."""
    for size, suffix in ((1_000_000, "M"), (1000, "k")):
        if deliveries >= size and deliveries % size == 0:
            return f"{deliveries // size}{suffix}"
    return str(deliveries)


if __name__ == "__main__":
    main()
