"""Overlapping runs on one SQLite file: six planners and three dispatchers as real processes,
and a real SMTP server counting what arrives. Every employee must get each occurrence once."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.harness import Installation, SmtpSink
from tests.processes import announce_every_minute, delivery_states, use_smtp

pytestmark = pytest.mark.slow

EMPLOYEES = 300


def test_concurrent_ticks_and_dispatchers_deliver_each_occurrence_exactly_once(
    installation: Installation, smtp_sink: SmtpSink
) -> None:
    announce_every_minute(installation, EMPLOYEES)
    use_smtp(installation, smtp_sink, BULLETIN_BATCH_SIZE="10")
    smtp_sink.delay = 0.01  # slow enough that the dispatchers really overlap

    ticks = [installation.start("tick") for _ in range(6)]
    tick_outputs = [process.communicate(timeout=120) for process in ticks]
    assert all(process.returncode == 0 for process in ticks), tick_outputs
    planned = [int(out.split()[1]) for out, _ in tick_outputs]
    assert sum(planned) == installation.sql("SELECT count(*) FROM bulletin_occurrence")[0][0]
    dispatchers = [installation.start("dispatch") for _ in range(3)]
    outputs = [process.communicate(timeout=180) for process in dispatchers]
    assert all(process.returncode == 0 for process in dispatchers), outputs
    claimed = [int(out.split()[1]) for out, _ in outputs]
    print("deliveries claimed by each racing dispatcher:", claimed)
    assert sum(1 for n in claimed if n) >= 2, "the dispatchers did not overlap"

    occurrences = installation.sql("SELECT count(*) FROM bulletin_occurrence")[0][0]
    assert occurrences >= 1
    unsent = installation.sql(
        "SELECT id, state, attempts, last_error FROM bulletin_delivery WHERE state <> 'sent'"
    )
    assert delivery_states(installation) == {"sent": EMPLOYEES * occurrences}, (unsent, outputs)
    assert set(smtp_sink.message_ids().values()) == {1}
    per_person = Counter(r.recipients[0] for r in smtp_sink.received)
    assert len(per_person) == EMPLOYEES
    assert set(per_person.values()) == {occurrences}
