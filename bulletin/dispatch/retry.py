"""How long to wait before trying a failed delivery again, and when to stop."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from bulletin.conf import Options


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_seconds: float = 30.0
    max_seconds: float = 3600.0

    @classmethod
    def from_options(cls, opts: Options) -> RetryPolicy:
        return cls(opts.max_attempts, opts.retry_base_seconds, opts.retry_max_seconds)

    def gives_up(self, attempts: int) -> bool:
        return attempts >= self.max_attempts

    def delay(self, attempts: int, rand: Callable[[], float] = random.random) -> timedelta:
        """Exponential backoff with "equal jitter": half fixed, half random.

        The fixed half guarantees real spacing between tries; the random half spreads the
        retries of a whole failed batch so they do not hit a recovering server all at once.
        """
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** max(attempts - 1, 0))
        return timedelta(seconds=ceiling / 2 + rand() * ceiling / 2)
