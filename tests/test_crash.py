"""A dispatcher killed with SIGKILL in the middle of a batch, while the SMTP server holds its
replies to messages it already has. After the lease expires another dispatcher finishes the
job: nothing arrives twice, nothing is lost, and exactly the sends that were under way (one per
SMTP connection) are visible as unknown."""

from __future__ import annotations

import json
import signal
import time

import pytest

from tests.harness import Installation, SmtpSink
from tests.processes import announce_every_minute, delivery_states, use_smtp

pytestmark = pytest.mark.slow

EMPLOYEES = 60
LEASE_SECONDS = 2
ANSWERED = 25  # the server answers this many messages, then holds every reply


@pytest.mark.parametrize("connections", [1, 4])
def test_sigkill_mid_batch_neither_duplicates_nor_loses_a_delivery(
    installation: Installation, smtp_sink: SmtpSink, connections: int
) -> None:
    announce_every_minute(installation, EMPLOYEES)
    use_smtp(
        installation,
        smtp_sink,
        BULLETIN_BATCH_SIZE="20",
        BULLETIN_LEASE_SECONDS=str(LEASE_SECONDS),
        BULLETIN_DISPATCH_LANES="1",
        BULLETIN_EMAIL_CONNECTIONS=str(connections),  # a message in flight on each at the kill
    )
    installation.run("tick")
    total = sum(delivery_states(installation).values())
    assert total >= EMPLOYEES

    smtp_sink.hold_after = ANSWERED
    victim = installation.start("dispatch")
    assert smtp_sink.held.wait(timeout=60), "the dispatcher never got past the answered ones"
    smtp_sink.wait_for(ANSWERED + connections)  # every connection's message waits for its "250"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    smtp_sink.released.set()
    mid_crash = delivery_states(installation)
    assert mid_crash["sent"] == ANSWERED and mid_crash["sending"] == connections
    assert mid_crash.get("claimed", 0) > 0

    time.sleep(LEASE_SECONDS + 1)
    installation.run("dispatch")

    states = delivery_states(installation)
    assert states == {"sent": total - connections, "unknown": connections}
    received = smtp_sink.message_ids()
    assert set(received.values()) == {1}, "a Message-ID arrived twice"
    assert len(received) == total  # the unknown ones did reach the server, exactly once each
    status = json.loads(installation.run("status", "--json").stdout)
    assert status["deliveries"]["unknown"] == connections
    assert status["deliveries"]["pending"] == status["deliveries"]["claimed"] == 0
