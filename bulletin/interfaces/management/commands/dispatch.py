"""``bulletin dispatch``: send due deliveries until nothing is due, then exit, printing
``dispatched: S sent, F failed, U unknown, R retrying`` (each delivery it attempted, counted
once by how it ended; deliveries held back a moment by a pace are still due: it waits for them).

SIGTERM or Ctrl+C asks every lane to stop: each one records the outcomes of its sends in flight,
gives the rest of its batch back to the queue (unattempted, no attempt counted) and returns, and
the command exits 0 saying how many were sent and how many given back. A second signal is not
caught: it ends the process at once, like a kill, and the reaper settles what it held (the sends
in flight become ``unknown`` where the channel cannot de-duplicate).
"""

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from bulletin import conf
from bulletin.dispatch.sender import drain_lanes, outcomes
from bulletin.interfaces.management.base import BulletinCommand

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[list[str]]:
    """Set ``stop`` on the first SIGTERM/SIGINT; yields the names of the signals caught."""
    caught: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught  # only the main thread may handle signals (call_command from elsewhere)
        return
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}

    def handler(number: int, frame: FrameType | None) -> None:
        caught.append(signal.Signals(number).name)
        stop.set()
        log.info("stopping: finishing the sends in flight", extra={"signal": caught[0]})
        for each in STOP_SIGNALS:  # a second signal means "now"
            signal.signal(each, signal.SIG_DFL)

    for number in STOP_SIGNALS:
        signal.signal(number, handler)
    try:
        yield caught
    finally:
        for number, action in previous.items():
            signal.signal(number, action)


class Command(BulletinCommand):
    help = (
        "Send due deliveries until nothing is due (waiting for those a pace holds back a "
        "moment), then exit, printing how they ended. SIGTERM or Ctrl+C finishes the sends in "
        "flight, gives the rest back to the queue and exits 0."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        with stop_on_signals(stop) as caught:
            dispatchers = drain_lanes(conf.options().dispatch_lanes, stop)
        if not caught:
            counts = outcomes(dispatchers)
            log.info("dispatch done", extra=counts)
            said = ", ".join(f"{count} {what}" for what, count in counts.items())
            self.stdout.write(f"dispatched: {said}")
            return
        sent, released = (sum(d.sent for d in dispatchers), sum(d.released for d in dispatchers))
        log.info(
            "dispatch stopped", extra={"signal": caught[0], "sent": sent, "released": released}
        )
        self.stdout.write(
            f"stopped by {caught[0]}: {sent} sent, {released} released back to the queue"
        )
