"""Where SQLite and PostgreSQL differ, for the ledger's statements: the one seam.

Everything else in the ledger is written once. The differences are few and all here:

- **Placeholders.** Statements are written with named parameters, ``%(name)s``. Django's
  cursors and psycopg take them as they are; SQLite's own driver (used by the serial
  ledger, see ``serial.py``) takes ``:name``.
- **A list of ids** is one parameter on both: a PostgreSQL array (``= ANY``), or a JSON
  array that SQLite's ``json_each`` unpacks. The statement's text stays the same for any
  count, so each is prepared (PostgreSQL) or compiled (SQLite's statement cache) once.
- **Timestamps**: psycopg takes aware datetimes; SQLite takes Django's own text form of UTC.
- **Claiming**: PostgreSQL lets workers take disjoint rows without waiting
  (``FOR UPDATE SKIP LOCKED``); SQLite has one writer at a time (its IMMEDIATE transactions).
- **Counting a move in the same statement**: PostgreSQL runs an ``UPDATE … RETURNING`` as a
  CTE feeding the insert of its count changes — one round trip, atomic by itself; SQLite
  cannot (no data-modifying CTEs), so the ledger inserts them itself inside the move's
  transaction.
- **Transactions of the serial ledger's own**: ``BEGIN IMMEDIATE`` on SQLite takes the write
  lock at the start, as the ORM's transactions do here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from django.db import connection

_NAMED = re.compile(r"%\((\w+)\)s")


@dataclass(frozen=True)
class Dialect:
    vendor: str

    @property
    def postgresql(self) -> bool:
        return self.vendor == "postgresql"

    def among(self, column: str, name: str) -> str:
        """``column`` is one of the ids in the list parameter ``name`` (see :meth:`ids`)."""
        if self.postgresql:
            return f"{column} = ANY(%({name})s)"
        return f"{column} IN (SELECT value FROM json_each(%({name})s))"

    def ids(self, values: Sequence[Any]) -> Any:
        """A list of ids (or channel names) as the one parameter :meth:`among` expects."""
        return list(values) if self.postgresql else json.dumps(list(values))

    def time(self, value: datetime) -> Any:
        if self.postgresql:
            return value
        return str(value.astimezone(UTC).replace(tzinfo=None))  # Django's own stored form

    @property
    def skip_locked(self) -> str:
        return " FOR UPDATE SKIP LOCKED" if self.postgresql else ""

    @property
    def begin(self) -> str:
        return "BEGIN" if self.postgresql else "BEGIN IMMEDIATE"

    def for_driver(self, sql: str) -> str:
        """``sql`` for the database driver's own cursor (no Django in between)."""
        return sql if self.postgresql else _NAMED.sub(r":\1", sql)


@lru_cache(maxsize=4)
def _dialect(vendor: str) -> Dialect:
    return Dialect(vendor)


def current() -> Dialect:
    """The default database's dialect."""
    return _dialect(connection.vendor)
