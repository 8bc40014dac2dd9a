"""Chaos: real Celery beats and workers on PostgreSQL and Redis, sending to a real SMTP server,
while workers are SIGKILLed and restarted, Redis restarts and database connections are cut.

    python -m tests.chaos [--employees N] [--duration SECONDS] [--seed S]

needs BULLETIN_TEST_POSTGRES_URL and BULLETIN_TEST_REDIS_URL (`scripts/services.sh up` writes
them; `make chaos` does all of it). Prints one closing line and exits non-zero unless there are
no duplicates and nothing is lost:

    chaos: N deliveries, D duplicates, L lost, U unknown
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from tests.cluster import Cluster, wait_until
from tests.harness import (
    ROOT,
    Installation,
    SmtpSink,
    employee_csv,
    installation_at,
    postgres_database,
    smtp_server,
)

log = logging.getLogger("chaos")

WORKERS = ("worker1", "worker2", "worker3")
UNSETTLED = ("pending", "claimed", "sending")


@dataclass(frozen=True)
class Plan:
    employees: int = 2000
    duration: float = 150.0
    seed: int = 1
    lease_seconds: int = 10


@dataclass
class Result:
    deliveries: int = 0
    duplicates: int = 0
    lost: int = 0
    unknown: int = 0
    events: list[str] = field(default_factory=list)

    def note(self, event: str) -> None:
        self.events.append(event)
        log.info(event)

    @property
    def ok(self) -> bool:
        return self.duplicates == 0 and self.lost == 0

    def line(self) -> str:
        return (
            f"chaos: {self.deliveries} deliveries, {self.duplicates} duplicates, "
            f"{self.lost} lost, {self.unknown} unknown"
        )


def announce(site: Installation) -> None:
    """Three announcements that fire while the chaos runs, to overlapping audiences."""
    body = site.directory / "body.md"
    body.write_text("Hello {{ first_name }}, this is announcement-keyed mail.")
    common = ["--body-file", str(body), "--tz", "Europe/London"]
    site.run("announce", "--title", "Every minute", "--cron", "* * * * *", *common)
    site.run(
        "announce",
        "--title",
        "Dept 0, every 2 minutes",
        "--cron",
        "*/2 * * * *",
        "--audience",
        "department:Dept 0",
        *common,
    )
    soon = datetime.now(UTC).astimezone().replace(second=0, microsecond=0) + timedelta(minutes=2)
    site.run(
        "announce",
        "--title",
        "Site 1, once",
        "--tz",
        "UTC",
        "--at",
        soon.astimezone(UTC).strftime("%Y-%m-%dT%H:%M"),
        "--audience",
        "location:Site 1",
        "--body-file",
        str(body),
    )
    # The first announcement fires at once: date its cursor to just before this minute.
    earlier = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(seconds=1)
    site.sql(
        "UPDATE bulletin_announcement SET planned_until = ?, next_fire_at = ? WHERE id = 1",
        (earlier, earlier),
    )


def set_up(site: Installation, plan: Plan, sink: SmtpSink, broker: str) -> None:
    csv_file = site.directory / "employees.csv"
    csv_file.write_text(employee_csv(plan.employees))
    site.run("import_employees", str(csv_file))
    site.env.update(
        EMAIL_HOST=sink.host,
        EMAIL_PORT=str(sink.port),
        CELERY_BROKER_URL=broker,
        BULLETIN_TICK_SECONDS="2",
        BULLETIN_SWEEP_SECONDS="3",
        BULLETIN_LEASE_SECONDS=str(plan.lease_seconds),
        BULLETIN_BATCH_SIZE="50",
        BULLETIN_DISPATCH_BUDGET_SECONDS="10",
        CELERY_VISIBILITY_TIMEOUT="30",
        # Workers keep their connections, so cutting them hits live sessions mid-work.
        CONN_MAX_AGE="60",
    )
    announce(site)


def restart_redis() -> str:
    subprocess.run([str(ROOT / "scripts/services.sh"), "restart-redis"], check=True)
    return "redis restarted"


def cut_database_connections(site: Installation) -> str:
    """pg_terminate_backend on every connection the workers and beats hold (retrying briefly
    until there is at least one, since connections come and go between tasks)."""
    name = site.database_url.rsplit("/", 1)[1]
    admin = site.database_url.rsplit("/", 1)[0] + "/postgres"
    terminated = 0
    with psycopg.connect(admin, autocommit=True) as connection:
        for _ in range(200):  # up to 20 s: a worker may be restarting, another between tasks
            rows = connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            ).fetchall()
            terminated += len(rows)
            if terminated:
                break
            time.sleep(0.1)
    return f"{terminated} database connection(s) terminated"


def unleash(cluster: Cluster, plan: Plan, rng: random.Random, result: Result) -> None:
    """Kill and restart workers at random moments; restart Redis once; cut the database once."""
    once: dict[float, Callable[[], str]] = {
        plan.duration * 0.35: restart_redis,
        plan.duration * 0.6: lambda: cut_database_connections(cluster.site),
    }
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < plan.duration:
        for moment in [m for m in once if m <= elapsed]:
            result.note(once.pop(moment)())
        time.sleep(rng.uniform(2.0, 6.0))
        victim = rng.choice(WORKERS)
        cluster.kill_worker(victim)
        time.sleep(rng.uniform(0.2, 1.5))
        cluster.start_worker(victim)
        result.note(f"SIGKILL {victim}, restarted")
    for action in once.values():
        result.note(action())


def stop_planning(site: Installation) -> None:
    site.sql(
        "UPDATE bulletin_announcement SET status = 'paused', next_fire_at = NULL "
        "WHERE status = 'scheduled'"
    )


def unsettled(site: Installation) -> int:
    marks = ",".join("?" * len(UNSETTLED))
    return int(
        site.sql(f"SELECT count(*) FROM bulletin_delivery WHERE state IN ({marks})", UNSETTLED)[0][
            0
        ]
    )


def tally(site: Installation, sink: SmtpSink, result: Result) -> None:
    received = sink.message_ids()
    result.duplicates = sum(count - 1 for count in received.values() if count > 1)
    rows = site.sql("SELECT occurrence_id, employee_id, channel, state FROM bulletin_delivery")
    result.deliveries = len(rows)
    result.unknown = sum(1 for *_, state in rows if state == "unknown")
    visible = {"failed", "unknown", "skipped"}
    # A Message-ID is <occurrence.employee.channel[.installation]@domain>: keep its identity.
    arrived = {".".join(key.strip("<>").split("@")[0].split(".")[:3]) for key in received}
    result.lost = sum(
        1
        for occurrence, employee, channel, state in rows
        if state not in visible and f"{occurrence}.{employee}.{channel}" not in arrived
    )


def run(plan: Plan, postgres: str, broker: str, workdir: Path) -> Result:
    rng, result = random.Random(plan.seed), Result()
    with smtp_server() as sink, postgres_database(postgres) as database:
        site = installation_at(workdir, database)
        set_up(site, plan, sink, broker)
        cluster = Cluster(site)
        try:
            for number in (1, 2):
                cluster.start_beat(number)
            for name in WORKERS:
                cluster.start_worker(name)
            unleash(cluster, plan, rng, result)
            stop_planning(site)
            settle = plan.lease_seconds * 6 + 60
            if not wait_until(lambda: unsettled(site) == 0, settle, every=1.0):
                result.note(f"{unsettled(site)} deliveries never settled")
        finally:
            cluster.stop()
        tally(site, sink, result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--employees", type=int, default=Plan.employees)
    parser.add_argument("--duration", type=float, default=Plan.duration)
    parser.add_argument("--seed", type=int, default=Plan.seed)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd: a line per command
    postgres, redis = (
        os.environ.get(name) for name in ("BULLETIN_TEST_POSTGRES_URL", "BULLETIN_TEST_REDIS_URL")
    )
    if not postgres or not redis:
        sys.stderr.write("chaos: PostgreSQL and Redis are needed: run scripts/services.sh up\n")
        return 2
    plan = Plan(employees=args.employees, duration=args.duration, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="bulletin-chaos-") as workdir:
        result = run(plan, postgres, f"{redis}/15", Path(workdir))
    sys.stdout.write(result.line() + "\n")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
