"""Celery as the trigger: two beats, several workers and duplicated task messages over a real
Redis broker, against PostgreSQL and a real SMTP server. Each occurrence still arrives once."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
from celery import Celery

from tests.cluster import Cluster, wait_until
from tests.conftest import require_server
from tests.harness import Installation, SmtpSink
from tests.processes import announce_every_minute, delivery_states, use_smtp

pytestmark = [pytest.mark.slow, pytest.mark.scale_out]

EMPLOYEES = 150


@pytest.fixture
def broker() -> Iterator[str]:
    url = f"{require_server('Redis', 'BULLETIN_TEST_REDIS_URL')}/{random.randint(1, 15)}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()


def settled(site: Installation) -> bool:
    states = delivery_states(site)
    return bool(states) and not set(states) & {"pending", "claimed", "sending"}


def test_two_beats_and_duplicated_messages_still_deliver_each_occurrence_once(
    installation: Installation, smtp_sink: SmtpSink, broker: str
) -> None:
    announce_every_minute(installation, EMPLOYEES)
    use_smtp(
        installation,
        smtp_sink,
        CELERY_BROKER_URL=broker,
        BULLETIN_TICK_SECONDS="1",
        BULLETIN_SWEEP_SECONDS="2",
        BULLETIN_BATCH_SIZE="10",
        BULLETIN_LEASE_SECONDS="10",
    )
    cluster = Cluster(installation)
    try:
        for number in (1, 2):
            cluster.start_beat(number)
        for name in ("worker1", "worker2"):
            cluster.start_worker(name)
        # Redelivered or duplicated messages: the same tasks, many times over.
        client = Celery(broker=broker)
        for _ in range(10):
            client.send_task("bulletin.tick")
            client.send_task("bulletin.dispatch")
        planned = wait_until(
            lambda: installation.sql("SELECT count(*) FROM bulletin_occurrence")[0][0] > 0, 60
        )
        assert planned, "beat never planned the occurrence"
        installation.sql("UPDATE bulletin_announcement SET status = 'paused', next_fire_at = NULL")
        assert wait_until(lambda: settled(installation), 120), delivery_states(installation)
    finally:
        cluster.stop()

    occurrences = installation.sql("SELECT count(*) FROM bulletin_occurrence")[0][0]
    assert delivery_states(installation) == {"sent": EMPLOYEES * occurrences}
    assert set(smtp_sink.message_ids().values()) == {1}
    per_person = Counter(r.recipients[0] for r in smtp_sink.received)
    assert len(per_person) == EMPLOYEES and set(per_person.values()) == {occurrences}
