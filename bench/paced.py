"""What the paced benchmarks share: a real `bulletin dispatch` process, its summary, and the
pace as the loopback receiver saw it.

A paced channel is judged against its own pace, not another program: the rate the receiver
saw, first post to last, against the configured rate (target: at least 0.9 of it), and the
busiest 10 seconds the receiver saw (target: at most the pace allows in 10 seconds, plus one).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench.common import RATIO_AT_LEAST, ROOT, VALUE_AT_MOST, Result
from tests.arrivals import busiest, pace_of

WINDOW = 10.0  # seconds: the window the pace is promised over, at the receiver
SUMMARY = re.compile(r"dispatched: (\d+) sent, (\d+) failed, (\d+) unknown, (\d+) retrying")


@dataclass(frozen=True)
class Drain:
    """One `bulletin dispatch`: its summary (sent, failed, unknown, retrying), wall time."""

    counts: tuple[int, int, int, int]
    seconds: float


def dispatch(**environment: str) -> Drain:
    """Run `bulletin dispatch` once, as cron or a systemd timer would, on this database."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bulletin.settings", **environment}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bulletin", "dispatch"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    seconds = time.perf_counter() - started
    sys.stderr.write(done.stderr)
    found = SUMMARY.search(done.stdout)
    if done.returncode or not found:
        raise SystemExit(f"bulletin dispatch failed ({done.returncode}): {done.stdout}")
    sent, failed, unknown, retrying = (int(n) for n in found.groups())
    return Drain((sent, failed, unknown, retrying), seconds)


def pace_rows(
    name: str, times: list[float], per_second: float, check: str, wrong: str, **details: Any
) -> list[Result]:
    """The two verdicts on a paced run: the rate reached, and the busiest 10 seconds."""
    allowed = per_second * WINDOW + 1
    rate = Result(
        name=f"{name}: rate at the receiver",
        value=pace_of(times),
        baseline=per_second,
        unit="/s",
        target=0.9,
        compare=RATIO_AT_LEAST,
        measures="posts a second, first to last, by the receiver's clock",
        baseline_is="the configured pace",
        details={"posts": len(times), **details},
        check=wrong or check,
        correct=not wrong,
    )
    window = Result(
        name=f"{name}: busiest {WINDOW:g} s",
        value=float(busiest(times, WINDOW)),
        baseline=allowed,
        unit="posts",
        target=allowed,
        compare=VALUE_AT_MOST,
        measures=f"the most posts the receiver saw in any {WINDOW:g} s, slid over every post",
        baseline_is=f"the pace times {WINDOW:g} s, plus one",
        check=wrong or check,
        correct=not wrong,
    )
    return [rate, window]
