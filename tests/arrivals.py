"""Loopback receivers that note when each request arrived, by their own clock, and the rule
a pace is judged by: the most requests in any window of W seconds, slid over every request.

Used by the paced-drain tests and the paced benchmarks (``make bench``); importable without
pytest.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.http_receiver import HttpReceiver, Reply, Request
from tests.slack_server import Call, SlackServer


class TimedSlack(SlackServer):
    """The loopback Slack (tests/slack_server.py), noting when each request arrived."""

    def __init__(self, **kwargs: Any) -> None:
        self.arrivals: list[tuple[float, str]] = []
        super().__init__(**kwargs)

    def _received(self, call: Call) -> Any:
        self.arrivals.append((time.monotonic(), call.method))
        return super()._received(call)

    def posted_at(self, since: int = 0) -> list[float]:
        """When each ``chat.postMessage`` arrived (from the ``since``-th request on)."""
        arrivals = list(self.arrivals)[since:]
        return sorted(at for at, method in arrivals if method == "chat.postMessage")


class TimedTeams(HttpReceiver):
    """A Teams workflow webhook on loopback (202, empty body), noting when each post arrived."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self._noted = threading.Lock()
        super().__init__(default=self._accept)

    def _accept(self, request: Request) -> Reply:
        with self._noted:
            self.arrivals.append(time.monotonic())
        return Reply.teams_accepted()


def busiest(times: list[float], window: float) -> int:
    """The most requests in any window of ``window`` seconds, slid over every request."""
    times, most, first = sorted(times), 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


def pace_of(times: list[float]) -> float:
    """Requests a second, first to last, as the receiver saw them."""
    times = sorted(times)
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
