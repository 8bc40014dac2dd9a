"""The benchmark suite at tiny sizes: every benchmark runs end to end and its answer is checked.

Speed is not judged here (that is `make bench`); correctness is — a benchmark whose workers
lost or doubled a delivery, or whose sink got a message twice, reports a wrong answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from bench.__main__ import BENCHMARKS
from tests.harness import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.scale_out]

FIELDS = {"name", "value", "baseline", "unit", "ratio", "target", "met", "check", "correct"}


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, object]]:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows: list[dict[str, object]] = json.loads(out.read_text())
    return rows


def test_every_benchmark_reports_a_checked_answer(smoke_results: list[dict[str, object]]) -> None:
    assert len(smoke_results) >= len(BENCHMARKS) + 1  # email reports two rows, fan-out RSS one
    for row in smoke_results:
        assert row.keys() >= FIELDS, row
        assert row["correct"] is True, row["check"]
        assert isinstance(row["value"], float) and row["value"] > 0


def test_the_table_names_every_benchmark_with_its_ratio_and_target(
    smoke_results: list[dict[str, object]],
) -> None:
    from bench.__main__ import table

    printed = table(smoke_results)  # type: ignore[arg-type]
    for row in smoke_results:
        assert str(row["name"]) in printed
    assert "≥ 0.5\N{MULTIPLICATION SIGN}" in printed and "≤ 1.5\N{MULTIPLICATION SIGN}" in printed


def result(**fields: Any) -> Any:
    """A result row a test makes: a rows/s comparison with a target of at least ``target``."""
    from bench.common import RATIO_AT_LEAST, Result

    shape = {"name": "x", "unit": "rows/s", "compare": RATIO_AT_LEAST, "measures": ""}
    return Result(**{**shape, "baseline_is": "", "check": "", **fields})


def test_a_fast_wrong_answer_never_meets_its_target() -> None:
    wrong = result(
        value=10.0, baseline=1.0, target=1.0, check="expected 5 rows, found 6", correct=False
    )
    assert wrong.ratio == 10.0 and wrong.met is False  # fast but wrong never meets a target


def test_a_slow_spell_during_some_runs_is_not_taken_for_a_difference_in_speed() -> None:
    from bench.common import paired_ratio

    # The machine slowed to half speed for rounds 2 and 3, and again during the baseline's
    # run of round 5: medians alone would call ours twice as fast; round by round it is 1.05
    # times as fast.
    ours = [1.0, 2.0, 2.0, 1.0, 1.0]
    theirs = [1.05, 2.1, 2.1, 1.05, 2.1]
    assert paired_ratio(ours, theirs) == pytest.approx(1.05)
    row = result(
        value=5 / 1.0,
        baseline=5 / 2.1,
        target=2.0,
        correct=True,
        round_ratio=paired_ratio(ours, theirs),
    )
    assert row.value / row.baseline == pytest.approx(2.1)
    assert row.ratio == pytest.approx(1.05) and row.met is False
    assert row.as_json()["ratio_of_medians"] == pytest.approx(2.1)


def test_the_paced_benchmarks_judge_the_rate_the_busiest_ten_seconds_and_calls_per_dm(
    smoke_results: list[dict[str, object]],
) -> None:
    names = [str(row["name"]) for row in smoke_results]
    for channel in ("Slack DMs", "Teams posts"):
        ours = [name for name in names if channel in name]
        assert any(name.endswith("rate at the receiver") for name in ours), ours
        assert any(name.endswith("busiest 10 s") for name in ours), ours
    [calls] = [row for row in smoke_results if str(row["name"]).endswith("calls per DM")]
    assert calls["target"] == 1.05 and calls["met"] is True
