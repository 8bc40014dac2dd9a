"""``bulletin run``: web server, planner and dispatcher in one process, for one machine.

Waitress serves the WSGI app on the main thread; the planner and the dispatcher are daemon
threads that only *trigger* work — every guarantee lives in the database, so a crash here loses
nothing that a restart will not pick up.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from django.db import connections

from bulletin.conf import options
from bulletin.dispatch.planning import tick
from bulletin.dispatch.sender import run_forever

log = logging.getLogger(__name__)


def plan_forever(stop: threading.Event) -> None:
    interval = options().tick_seconds
    while not stop.is_set():
        try:
            tick()
        except Exception:
            log.exception("planner tick failed; will try again")
        stop.wait(interval)


def _thread(
    name: str, target: Callable[[threading.Event], None], stop: threading.Event
) -> threading.Thread:
    def body() -> None:
        try:
            target(stop)
        finally:
            connections.close_all()

    thread = threading.Thread(target=body, name=name, daemon=True)
    thread.start()
    return thread


def _stop_on_sigterm() -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _second_signal_ends_at_once() -> None:
    """While the lanes finish their sends in flight, another SIGTERM or Ctrl+C ends the
    process at once, as a kill would (the reaper then settles what they held), with no
    traceback: as `bulletin dispatch` does."""
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, signal.SIG_DFL)


def serve(host: str, port: int, ready: Callable[[str], None], threads: int = 8) -> None:
    """Serve until SIGTERM or Ctrl+C; ``ready`` hears the URL once the socket is listening."""
    from waitress import create_server  # type: ignore[import-untyped]

    from bulletin.wsgi import application

    server = create_server(application, host=host, port=port, threads=threads)
    stop = threading.Event()
    workers = []
    if options().embedded_workers:
        lanes = [
            _thread(f"dispatcher-{n}", run_forever, stop) for n in range(options().dispatch_lanes)
        ]
        workers = [_thread("planner", plan_forever, stop), *lanes]
    else:
        log.info("embedded planner and dispatcher off: Celery beat and workers do that job")
    url = f"http://{host}:{server.effective_port}/"
    try:
        _stop_on_sigterm()
        log.info("bulletin running", extra={"url": url})
        ready(url)
        server.run()
    except KeyboardInterrupt:
        log.info("stopping: finishing the current send and releasing the rest")
    finally:
        stop.set()
        _second_signal_ends_at_once()
        server.close()
        for worker in workers:
            worker.join(timeout=options().lease_seconds)
