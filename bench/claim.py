"""Claim and complete N deliveries with W worker processes, against a bare SKIP LOCKED loop.

The baseline is the least a queue on PostgreSQL can do: one ``UPDATE … FOR UPDATE SKIP LOCKED
… RETURNING`` to take a batch and one ``UPDATE`` to mark it done, from raw psycopg, with the
same batch size and as many processes. Bulletin's workers run the real :class:`Dispatcher`
(leases, intents, attempts, outcomes, logs) through a channel that sends nothing. Every worker
reports the ids it handled, so a run proves each delivery was handled exactly once.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import (
    RATIO_AT_LEAST,
    ROOT,
    Result,
    median,
    paired_ratio,
    report,
    seed_employees,
    settle,
    setup_django,
)

BARE_CLAIM = (
    "WITH due AS (SELECT id FROM bulletin_delivery WHERE state = 'pending' AND due_at <= now() "
    "ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED) "
    "UPDATE bulletin_delivery d SET state = 'claimed', lease_token = %s, "
    "lease_expires_at = now() + interval '60 seconds' FROM due WHERE d.id = due.id RETURNING d.id"
)
BARE_COMPLETE = (
    "UPDATE bulletin_delivery SET state = 'sent', sent_at = now(), lease_token = NULL, "
    "lease_expires_at = NULL WHERE id = ANY(%s)"
)


FLOOR_ROUNDS = 3


def bare_worker(batch: int) -> list[int]:
    import uuid

    import psycopg
    from django.db import connection

    settings = connection.settings_dict
    handled: list[int] = []
    with psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"],
        port=settings["PORT"],
        autocommit=True,
    ) as raw:
        token = uuid.uuid4().hex
        while ids := [row[0] for row in raw.execute(BARE_CLAIM, [batch, token]).fetchall()]:
            raw.execute(BARE_COMPLETE, [ids])
            handled += ids
    return handled


def our_worker() -> list[int]:
    from bench.noop import NoopTransport, register
    from bulletin.dispatch.sender import Dispatcher

    register()
    while Dispatcher().run_until_idle():
        pass
    return list(NoopTransport.sent)


def ledger_worker(batch: int) -> list[int]:
    """The ledger's own statements and nothing else: claim (with the intent, as for a
    de-duplicating channel, and the people), then every row's outcome, its history row and
    counts. No message is composed or sent: what the SQL alone costs, the floor under
    ``our_worker``."""
    import uuid
    from datetime import timedelta

    from django.utils import timezone

    from bulletin.dispatch import ledger
    from bulletin.domain.models import AttemptOutcome, DeliveryState

    sent = ledger.Outcome(DeliveryState.SENT, AttemptOutcome.SENT)
    handled: list[int] = []
    token, lease = uuid.uuid4().hex, timedelta(seconds=60)
    while rows := ledger.claim_rows(token, batch, timezone.now(), lease, ("noop",)):
        started = timezone.now()
        ids = [row.id for row in rows]
        ledger.finish_many(dict.fromkeys(ids, sent), token, timezone.now(), started)
        handled += ids
    return handled


def worker(kind: str, batch: int, out: Path) -> None:
    """One worker process: wait for "go" on stdin, drain the queue, write what it handled."""
    setup_django()
    from django.db import connection

    connection.ensure_connection()
    print("ready", flush=True)
    sys.stdin.readline()
    workers = {"bare": lambda: bare_worker(batch), "ledger": lambda: ledger_worker(batch)}
    handled = workers.get(kind, our_worker)()
    out.write_text(json.dumps({"finished": time.time(), "ids": handled}))


def prepare(rows: int, channel: str) -> None:
    from django.utils import timezone

    from bulletin.dispatch.fanout import fan_out
    from bulletin.domain.models import Announcement, Occurrence, OccurrenceState
    from tests.factories import announcement

    seed_employees(rows)
    now = timezone.now()
    item = announcement(now=now, cron="0 9 * * 1", mandatory=True)
    Announcement.objects.filter(pk=item.pk).update(channels=[channel])
    item.refresh_from_db()
    occurrence = Occurrence.objects.create(
        announcement=item, zone="Europe/London", fire_at=now, state=OccurrenceState.PLANNED
    )
    fan_out(occurrence, now)


def reset(channel: str) -> None:
    """Every delivery pending again, as fanned out; no attempts; the table vacuumed."""
    from django.db import connection
    from django.utils import timezone

    from bulletin.dispatch.ledger import counts

    # The benchmark's own reset, around the ledger (no product path does this): then the kept
    # counts are rebuilt, so the race starts from a ledger whose counts agree.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM bulletin_attempt")
        cursor.execute(
            "UPDATE bulletin_delivery SET state = 'pending', channel = %s, attempts = 0, "
            "budget_start = 0, lease_token = NULL, lease_expires_at = NULL, sent_at = NULL, "
            "due_at = %s",
            [channel, timezone.now()],
        )
    counts.recount()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE bulletin_delivery")
        cursor.execute("VACUUM ANALYZE bulletin_attempt")
    settle()


def race(kind: str, workers: int, batch: int, scratch: Path) -> tuple[float, list[list[int]]]:
    """Start the workers, release them together; seconds until the last one finished."""
    env = {**os.environ, "BULLETIN_BATCH_SIZE": str(batch)}
    outs = [scratch / f"{kind}-{n}.json" for n in range(workers)]
    command = [sys.executable, "-m", "bench.claim", "--worker", kind, f"--batch={batch}"]
    processes = [
        subprocess.Popen(
            [*command, f"--out={out}"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for out in outs
    ]
    for process in processes:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    started = time.time()
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    for process in processes:
        if process.wait() != 0:
            raise SystemExit(f"a {kind} worker failed")
    results = [json.loads(out.read_text()) for out in outs]
    return max(r["finished"] for r in results) - started, [r["ids"] for r in results]


def verify(kind: str, rows: int, handled: list[list[int]]) -> str:
    from bulletin.domain.models import Attempt, Delivery

    every = [pk for ids in handled for pk in ids]
    problems = []
    if len(every) != rows or len(set(every)) != rows:
        problems.append(f"{kind}: {len(every)} handled, {len(set(every))} distinct, of {rows}")
    sent = Delivery.objects.filter(state="sent").count()
    if sent != rows:
        problems.append(f"{kind}: {sent} of {rows} deliveries sent")
    if kind != "bare" and Attempt.objects.filter(outcome="sent").count() != rows:
        problems.append(f"{kind}: attempts recorded do not match the deliveries")
    return "; ".join(problems)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--worker", choices=["bare", "noop", "noop-once", "ledger"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.batch, args.out)
        return
    setup_django()
    prepare(args.rows, "noop")
    times: dict[str, list[float]] = {
        "noop": [], "bare": [], "noop-once": [], "ledger": [], "bare-for-ledger": []
    }  # fmt: skip
    problems: list[str] = []
    scratch = Path(os.environ["BULLETIN_VAR_DIR"])

    def timed_race(kind: str, into: str) -> None:
        reset("noop" if kind in ("bare", "ledger") else kind)
        elapsed, handled = race(kind, args.workers, args.batch, scratch)
        times[into].append(elapsed)
        problems.append(verify(kind, args.rows, handled))

    for round_number in range(args.rounds):
        order = ["noop", "bare"] if round_number % 2 == 0 else ["bare", "noop"]
        if round_number == 0 and os.environ.get("BENCH_PER_ROW"):
            order.append("noop-once")
        for kind in order:
            timed_race(kind, kind)
    # The floor (the ledger's statements alone), in rounds of its own after the judged ones,
    # so the judged rounds run exactly as before it was measured.
    for round_number in range(min(FLOOR_ROUNDS, args.rounds)):
        for kind in ["ledger", "bare"] if round_number % 2 == 0 else ["bare", "ledger"]:
            timed_race(kind, "ledger" if kind == "ledger" else "bare-for-ledger")
    _report(args, times, "; ".join(filter(None, problems)))


def _report(args: argparse.Namespace, times: dict[str, list[float]], wrong: str) -> None:
    rate = {kind: args.rows / median(spent) for kind, spent in times.items() if spent}
    details: dict[str, Any] = {"seconds": times}
    details["ledger_alone_rate"] = round(rate["ledger"])
    details["ledger_alone_ratio"] = round(
        paired_ratio(times["ledger"], times["bare-for-ledger"]), 3
    )
    if "noop-once" in rate:
        details["intent_per_delivery_rate"] = round(rate["noop-once"])
        details["intent_per_delivery_ratio"] = round(rate["noop-once"] / rate["bare"], 3)
    report(
        Result(
            name=f"claim+complete {args.rows}, {args.workers} workers, PostgreSQL",
            value=rate["noop"],
            baseline=rate["bare"],
            unit="rows/s",
            target=0.5,
            compare=RATIO_AT_LEAST,
            measures=f"Dispatcher processes, batch {args.batch}, a no-op deduplicating channel",
            baseline_is="raw psycopg UPDATE … FOR UPDATE SKIP LOCKED … RETURNING, then UPDATE",
            check=wrong or f"each of {args.rows} deliveries handled once, in every run",
            correct=not wrong,
            details=details,
            round_ratio=paired_ratio(times["noop"], times["bare"]),
        )
    )


if __name__ == "__main__":
    main()
