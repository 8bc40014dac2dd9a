"""A short run of `make chaos`: the same scenario with fewer employees and less time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import chaos
from tests.conftest import require_server

pytestmark = [pytest.mark.slow, pytest.mark.scale_out]


def test_killed_workers_a_restarted_broker_and_cut_connections_lose_and_duplicate_nothing(
    tmp_path: Path,
) -> None:
    postgres = require_server("PostgreSQL", "BULLETIN_TEST_POSTGRES_URL")
    redis = require_server("Redis", "BULLETIN_TEST_REDIS_URL")
    plan = chaos.Plan(employees=300, duration=25, seed=7, lease_seconds=5)

    result = chaos.run(plan, postgres, f"{redis}/14", tmp_path)

    assert result.ok, result.line()
    assert (result.duplicates, result.lost) == (0, 0)
    assert result.deliveries >= 300
    # The chaos really happened.
    assert sum("SIGKILL" in event for event in result.events) >= 3
    assert "redis restarted" in result.events
    cut = [event for event in result.events if event.endswith("terminated")]
    assert cut and not cut[0].startswith("0 ")
