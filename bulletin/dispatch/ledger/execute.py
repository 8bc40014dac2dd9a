"""Running a move: the ``UPDATE`` and the change to the kept counts, in one transaction.

On PostgreSQL a move is one statement: the ``UPDATE … RETURNING`` is a CTE (``moved``) whose
rows the count changes are computed from (``sql.COUNTED``), and whose ``after`` part (by
default the moved rows themselves) is what comes back. Atomic by itself, and one round trip.

On SQLite the ``UPDATE … RETURNING`` runs, and the counts change by its rows
(``counts.Changes``), in one transaction: the caller's, or one of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from django.db import connection, transaction

from bulletin.dispatch.ledger import sql
from bulletin.dispatch.ledger.counts import Changes
from bulletin.dispatch.ledger.cursors import cursor
from bulletin.dispatch.ledger.dialect import Dialect, current

Row = tuple[Any, ...]


@contextmanager
def together() -> Iterator[None]:
    """One transaction for several statements: the caller's, or a new one."""
    with nullcontext() if connection.in_atomic_block else transaction.atomic():
        yield


def move(
    template: str,
    params: dict[str, Any],
    *,
    was: str,
    before: str = "",
    also: str = "",
    after: str = "SELECT * FROM moved",
    **filled: str,
) -> list[Row]:
    """Run the move ``template`` (see ``sql``) from state ``was``, counting it.

    ``before``: CTEs it reads (``name AS (…), ``). ``also`` (more CTEs over ``moved``, each
    after a comma) and ``after`` run on PostgreSQL only; on SQLite the moved rows come back
    and the caller does the rest in the same transaction (see :func:`together`).
    """
    dialect = current()
    params = {**params, "was": was}
    if dialect.postgresql:
        statement = f"WITH {before}moved AS ({template}), {sql.COUNTED}{also} {after}"
        return _fetch(sql.of(dialect, statement, **filled), params)
    statement = f"WITH {before.rstrip().rstrip(',')} {template}" if before else template
    with together():
        rows = _fetch(sql.of(dialect, statement, **filled), params)
        changes = Changes()
        changes.moved(rows, was)
        with cursor() as on:
            changes.write(on)
    return rows


def _fetch(statement: str, params: dict[str, Any]) -> list[Row]:
    with cursor() as on:
        on.execute(statement, params)
        return [tuple(row) for row in on.fetchall()]


def run(template: str, params: dict[str, Any], **filled: str) -> int:
    """A statement that moves no state; returns how many rows it touched."""
    with cursor() as on:
        on.execute(sql.of(current(), template, **filled), params)
        return int(on.rowcount)


def fetch(template: str, params: dict[str, Any], **filled: str) -> list[Row]:
    return _fetch(sql.of(current(), template, **filled), params)


def subquery(dialect: Dialect, compiled: tuple[str, tuple[Any, ...]]) -> tuple[str, dict[str, Any]]:
    """An ORM query's SQL (``%s`` placeholders) with named ones instead, for ``{chosen}``.

    Django writes a literal percent sign as ``%%``, so every other ``%s`` is a parameter.
    """
    text, values = compiled
    names = iter(range(len(values)))
    pieces = text.split("%%")
    named = "%%".join(_name_each(piece, names) for piece in pieces)
    return named, {f"q{i}": value for i, value in enumerate(values)}


def _name_each(piece: str, names: Iterator[int]) -> str:
    parts = piece.split("%s")
    return parts[0] + "".join(f"%(q{next(names)})s{rest}" for rest in parts[1:])
