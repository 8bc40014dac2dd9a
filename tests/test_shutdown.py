"""`bulletin dispatch` stopped with SIGTERM in the middle of its batches, while a real SMTP server
on loopback takes its time over each reply: the sends in flight are recorded, the rest go back
to the queue, and a second dispatcher sends exactly those."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections import Counter

import pytest

from bulletin.interfaces.management.commands.dispatch import stop_on_signals
from tests.harness import Installation, SmtpSink, free_port
from tests.processes import (
    announce_every_minute,
    delivery_states,
    tick_one_occurrence_due_now,
    use_smtp,
)

EMPLOYEES = 40
LANES = 2
# Each lane claims half the queue in its first batch, so everything not yet sent when the
# signal comes is held by a lane and must be released by it, not merely left unclaimed.
BATCH = EMPLOYEES // LANES
SUMMARY = re.compile(r"stopped by SIGTERM: (\d+) sent, (\d+) released back to the queue")


@pytest.mark.slow
def test_sigterm_mid_batch_finishes_the_sends_in_flight_and_releases_the_rest(
    installation: Installation, smtp_sink: SmtpSink
) -> None:
    announce_every_minute(installation, EMPLOYEES)
    use_smtp(
        installation,
        smtp_sink,
        BULLETIN_BATCH_SIZE=str(BATCH),
        BULLETIN_DISPATCH_LANES=str(LANES),
        BULLETIN_LEASE_SECONDS="60",  # nothing may be settled by a lease running out
    )
    # Not a bare tick: one started just before a minute turns finds that minute due too.
    tick_one_occurrence_due_now(installation)
    assert delivery_states(installation) == {"pending": EMPLOYEES}
    smtp_sink.delay = 0.3  # each message waits this long for its "250"

    dispatcher = installation.start("dispatch")
    smtp_sink.wait_for(6)
    dispatcher.send_signal(signal.SIGTERM)
    stdout, stderr = dispatcher.communicate(timeout=30)

    assert dispatcher.returncode == 0, stderr
    summary = SUMMARY.fullmatch(stdout.strip())
    assert summary, f"unexpected output: {stdout!r}"
    sent, released = int(summary[1]), int(summary[2])
    states = delivery_states(installation)
    assert states == {"sent": sent, "pending": released}, "in flight, claimed or unknown left"
    assert sent + released == EMPLOYEES and released > 0
    received = smtp_sink.message_ids()
    assert len(received) == sent and set(received.values()) == {1}
    assert int(installation.sql("SELECT count(*) FROM bulletin_attempt")[0][0]) == sent

    installation.run("dispatch")

    assert delivery_states(installation) == {"sent": EMPLOYEES}
    assert set(smtp_sink.message_ids().values()) == {1}, "a Message-ID arrived twice"
    per_person = Counter(r for message in smtp_sink.received for r in message.recipients)
    assert per_person == {f"person{n}@example.com": 1 for n in range(EMPLOYEES)}


def test_ctrl_c_asks_the_lanes_to_stop_and_a_second_one_is_left_to_end_the_process() -> None:
    stop = threading.Event()
    before = signal.getsignal(signal.SIGINT)

    with stop_on_signals(stop) as caught:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.wait(timeout=5) and caught == ["SIGINT"]
        assert signal.getsignal(signal.SIGINT) == signal.getsignal(signal.SIGTERM) == signal.SIG_DFL

    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.slow
def test_a_second_sigterm_while_run_finishes_its_send_ends_it_at_once_without_a_traceback(
    installation: Installation, smtp_sink: SmtpSink
) -> None:
    announce_every_minute(installation, 2)
    use_smtp(installation, smtp_sink, BULLETIN_TICK_SECONDS="1", BULLETIN_LEASE_SECONDS="60")
    smtp_sink.hold_after = 0  # the first message's "250" is withheld: a send stays in flight
    process = installation.start("run", "--port", str(free_port()))
    try:
        assert smtp_sink.held.wait(timeout=60), "no send reached the mail server"
        process.send_signal(signal.SIGTERM)
        time.sleep(1)
        assert process.poll() is None, "run should still be waiting for the send in flight"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        smtp_sink.released.set()
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGTERM
    assert "Traceback" not in stderr
