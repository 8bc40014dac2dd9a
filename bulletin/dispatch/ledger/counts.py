"""Counts kept, not computed: deliveries per (occurrence, channel, state).

Every move of the ledger writes how the counts change in the same transaction as the move
(:class:`Changes`, or on PostgreSQL the move's own statement, see ``sql.COUNTED``), as rows
appended to ``DeliveryCountChange``; :func:`fold` adds them into ``DeliveryCount`` (the
planner's tick, every few seconds). A count is its folded row plus its changes not yet
folded, so what HR, ``/metrics`` and ``status`` read costs the same at ten thousand
deliveries as at ten million: it grows with occurrences, never with deliveries.

Retention (``prune``) moves a pruned delivery's count from ``live`` to ``pruned``: the rows
go, the totals HR sees keep them — an announcement that reached 10,000 people two years ago
still says so. ``live`` always equals a fresh ``GROUP BY`` of the ledger (:func:`check`
proves it; the property tests and the chaos run call it).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction

from bulletin.dispatch.ledger import sql
from bulletin.dispatch.ledger.cursors import cursor
from bulletin.dispatch.ledger.dialect import current
from bulletin.domain.tallies import bucket

log = logging.getLogger(__name__)

Key = tuple[int, str, str]  # occurrence id, channel, state
Timed = tuple[str, str, int]  # channel, attempt outcome, duration bucket


@dataclass
class Changes:
    """How a transaction's moves change the counts, written once at its end."""

    live: Counter[Key] = field(default_factory=Counter)
    pruned: Counter[Key] = field(default_factory=Counter)
    attempts: Counter[Timed] = field(default_factory=Counter)
    seconds: dict[Timed, float] = field(default_factory=dict)

    def moved(self, rows: Iterable[Sequence[Any]], was: str) -> None:
        """Rows whose first three columns are (occurrence, channel, state now), from ``was``."""
        for occurrence, channel, state, *_ in rows:
            self.live[(occurrence, channel, state)] += 1
            self.live[(occurrence, channel, was)] -= 1

    def created(self, occurrence: int, channel: str, state: str, count: int) -> None:
        self.live[(occurrence, channel, state)] += count

    def removed(self, rows: Iterable[Sequence[Any]]) -> None:
        """Pruned rows (occurrence, channel, state): out of the ledger, still in the totals."""
        for occurrence, channel, state, *_ in rows:
            self.live[(occurrence, channel, state)] -= 1
            self.pruned[(occurrence, channel, state)] += 1

    def attempted(self, channel: str, outcome: str, seconds: float, count: int = 1) -> None:
        """``count`` attempts over ``channel`` ended as ``outcome``, each in ``seconds``."""
        key = (channel, outcome, bucket(seconds))
        self.attempts[key] += count
        self.seconds[key] = self.seconds.get(key, 0.0) + seconds * count

    def timed_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "channel": key[0],
                "outcome": key[1],
                "bucket": key[2],
                "attempts": n,
                "seconds": self.seconds[key],
            }
            for key, n in sorted(self.attempts.items())
            if n
        ]

    def rows(self) -> list[dict[str, Any]]:
        keys = sorted(set(self.live) | set(self.pruned))
        return [
            {
                "occurrence": key[0],
                "channel": key[1],
                "state": key[2],
                "live": self.live[key],
                "pruned": self.pruned[key],
            }
            for key in keys
            if self.live[key] or self.pruned[key]
        ]

    def write(self, on: Any) -> None:
        """Append them through the cursor ``on`` (inside the moves' transaction)."""
        rows, timed = self.rows(), self.timed_rows()
        if rows:
            on.executemany(sql.CHANGE, rows)
        if timed:
            on.executemany(sql.ATTEMPT_CHANGE, timed)
        for counter in (self.live, self.pruned, self.attempts, self.seconds):
            counter.clear()


def write(changes: Changes) -> None:
    with cursor() as on:
        changes.write(on)


def fold() -> int:
    """Add the changes appended since the last fold into the count rows; returns how many
    kinds had some (0-2). Cheap when there are none: a read, no write lock."""
    postgresql = current().postgresql
    deliveries = (sql.FOLD_POSTGRESQL,) if postgresql else (sql.FOLD_SQLITE, sql.FOLD_SQLITE_DONE)
    attempts = (
        (sql.FOLD_ATTEMPTS_POSTGRESQL,)
        if postgresql
        else (sql.FOLD_ATTEMPTS_SQLITE, sql.FOLD_ATTEMPTS_SQLITE_DONE)
    )
    folded = _fold(sql.ANY_CHANGE, (*deliveries, sql.FOLD_EMPTY))
    return folded + _fold(sql.ANY_ATTEMPT_CHANGE, attempts)


def _fold(any_change: str, statements: Sequence[str]) -> int:
    with cursor() as on:
        on.execute(any_change)
        if on.fetchone() is None:
            return 0
    with transaction.atomic(), cursor() as on:
        for statement in statements:
            on.execute(statement)
    return 1


def recount() -> None:
    """Rebuild the live counts from the ledger itself (after a restore, or a hand-made fix
    in SQL); pruned counts stay. Writers wait meanwhile: on PostgreSQL the deliveries are
    locked against changes (SHARE mode), on SQLite the transaction is the only writer."""
    with transaction.atomic(), cursor() as on:
        if current().postgresql:
            on.execute("LOCK TABLE bulletin_delivery IN SHARE MODE")
        for statement in sql.RECOUNT_CLEAR:
            on.execute(statement)
        on.execute(sql.RECOUNT)
        on.execute(sql.FOLD_EMPTY)
    log.info("delivery counts rebuilt from the ledger")


@dataclass(frozen=True)
class Count:
    """One key's count: ``live`` rows in the ledger, ``pruned`` ones gone from it."""

    announcement_id: int
    occurrence_id: int
    channel: str
    state: str
    live: int
    pruned: int

    @property
    def total(self) -> int:
        return self.live + self.pruned


def kept(*, occurrences: Sequence[int] | None = None) -> list[Count]:
    """The kept counts of ``occurrences`` (every occurrence when None)."""
    dialect = current()
    if occurrences is None:
        statement, params = sql.of(dialect, sql.KEPT, which="TRUE"), {}
    else:
        which = dialect.among("occurrence_id", "ids")
        statement, params = (
            sql.of(dialect, sql.KEPT, which=which),
            {"ids": dialect.ids(occurrences)},
        )
    return _read(statement, params)


def of_announcements(ids: Sequence[int]) -> list[Count]:
    """The kept counts of every occurrence of these announcements."""
    dialect = current()
    which = sql.of(dialect, sql.OF_ANNOUNCEMENTS)
    statement = sql.of(dialect, sql.KEPT, which=which)
    return _read(statement, {"ids": dialect.ids(ids)})


def _read(statement: str, params: dict[str, Any]) -> list[Count]:
    with connection.cursor() as on:
        on.execute(statement, params)
        found = on.fetchall()
    return [
        Count(a, o, c, s, int(live), int(pruned))
        for a, o, c, s, live, pruned in found
        if live or pruned  # a key whose changes cancel out, not yet folded away
    ]


def by_state(counts: Iterable[Count]) -> dict[str, int]:
    """Totals per state (pruned rows included), states with none left out."""
    totals: Counter[str] = Counter()
    for count in counts:
        totals[count.state] += count.total
    return {state: n for state, n in totals.items() if n}


def by(key: str, counts: Iterable[Count]) -> dict[Any, dict[str, int]]:
    """Totals per state for each ``announcement_id``, ``occurrence_id`` or ``channel``."""
    grouped: dict[Any, list[Count]] = {}
    for count in counts:
        grouped.setdefault(getattr(count, key), []).append(count)
    return {value: by_state(some) for value, some in grouped.items()}


@dataclass(frozen=True)
class Timing:
    """Attempts of one channel and outcome that took up to ``SEND_BUCKETS[bucket]``."""

    channel: str
    outcome: str
    bucket: int
    attempts: int
    seconds: float


def timings() -> list[Timing]:
    """The kept attempt counts, pruned attempts included (a counter never goes back)."""
    with connection.cursor() as on:
        on.execute(sql.KEPT_ATTEMPTS)
        found = on.fetchall()
    return [Timing(c, o, int(b), int(n), float(s)) for c, o, b, n, s in found]


def check() -> dict[Key, tuple[int, int]]:
    """Where the kept live counts differ from a fresh ``GROUP BY`` of the ledger: key →
    (kept, counted). Empty when they agree, which they always must."""
    with connection.cursor() as on:
        on.execute(sql.LEDGER_COUNTS)
        counted = {(o, c, s): int(n) for o, c, s, n in on.fetchall()}
    live = {(c.occurrence_id, c.channel, c.state): c.live for c in kept()}
    keys = set(counted) | {key for key, n in live.items() if n}
    return {
        key: (live.get(key, 0), counted.get(key, 0))
        for key in sorted(keys)
        if live.get(key, 0) != counted.get(key, 0)
    }
