"""A dispatcher killed with SIGKILL in the middle of a batch, while the SMTP server holds its
reply to a message it already has. After the lease expires another dispatcher finishes the job:
nothing arrives twice, nothing is lost, and the interrupted send is visible as unknown."""

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


def test_sigkill_mid_batch_neither_duplicates_nor_loses_a_delivery(
    installation: Installation, smtp_sink: SmtpSink
) -> None:
    announce_every_minute(installation, EMPLOYEES)
    use_smtp(
        installation,
        smtp_sink,
        BULLETIN_BATCH_SIZE="20",
        BULLETIN_LEASE_SECONDS=str(LEASE_SECONDS),
        BULLETIN_DISPATCH_LANES="1",  # one message in flight at the kill
    )
    installation.run("tick")
    total = sum(delivery_states(installation).values())
    assert total >= EMPLOYEES

    smtp_sink.hold_after = 25  # the 26th message arrives, then the server stalls its reply
    victim = installation.start("dispatch")
    assert smtp_sink.held.wait(timeout=60), "the dispatcher never reached the 26th message"
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    smtp_sink.released.set()
    mid_crash = delivery_states(installation)
    assert mid_crash.get("sending") == 1 and mid_crash.get("claimed", 0) > 0

    time.sleep(LEASE_SECONDS + 1)
    installation.run("dispatch")

    states = delivery_states(installation)
    assert states == {"sent": total - 1, "unknown": 1}
    received = smtp_sink.message_ids()
    assert set(received.values()) == {1}, "a Message-ID arrived twice"
    assert len(received) == total  # the unknown one did reach the server, exactly once
    status = json.loads(installation.run("status", "--json").stdout)
    assert status["deliveries"]["unknown"] == 1
    assert status["deliveries"]["pending"] == status["deliveries"]["claimed"] == 0
