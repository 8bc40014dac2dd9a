"""The cursors for dispatch's repeated statements.

A dispatcher runs the same few statements batch after batch: the claim, the outcomes with their
history rows, the intents. Django's cursors on PostgreSQL bind parameters on the client and
never prepare, so the server parses and plans each of them anew (the claim alone took 0.2 ms a
batch to plan). Here, on PostgreSQL, the server binds the parameters and psycopg prepares each
statement once per connection.

A prepared statement lives in the server's session. A pooler that hands sessions to other
clients between transactions (PgBouncer in transaction mode, before 1.21) loses them:
``BULLETIN_PREPARED_STATEMENTS=0`` binds on the client instead, as Django does. SQLite needs
none of this: its driver already keeps a cache of compiled statements.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper

from bulletin.conf import options


class _Preparing:
    """A psycopg cursor bound by the server that prepares each statement with parameters on
    its first run and reuses it after. BEGIN, COMMIT and savepoints take none: they are sent
    as they are, not worth a prepared slot."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self._cursor.execute(sql, params, prepare=bool(params))

    def executemany(self, sql: str, params: Sequence[Any]) -> None:
        self._cursor.executemany(sql, params)

    def fetchall(self) -> list[Any]:
        return list(self._cursor.fetchall())

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    def close(self) -> None:
        self._cursor.close()


def preparing(db: BaseDatabaseWrapper) -> bool:
    """PostgreSQL, the option on, and the connection allowed to prepare: settings give it a
    ``prepare_threshold`` only when the option was on at start, and without one psycopg
    ignores ``prepare=True`` — a server-bound cursor then would only lose Django's wrappers."""
    allowed = db.settings_dict.get("OPTIONS", {}).get("prepare_threshold") is not None
    return db.vendor == "postgresql" and allowed and options().prepared_statements


def driver_cursor(db: BaseDatabaseWrapper) -> Any:
    """A cursor of the driver's own on ``db``, which must be connected: preparing where
    :func:`preparing`, otherwise the one Django's connection makes."""
    if not preparing(db):
        return db.connection.cursor()
    import psycopg  # only where PostgreSQL is configured

    return _Preparing(psycopg.Cursor(db.connection))


@contextmanager
def cursor() -> Iterator[Any]:
    """A cursor on the default connection, inside whatever transaction it is in; errors come
    out as Django's (``IntegrityError``, ``OperationalError``…), as from the ORM."""
    if not preparing(connection):
        with connection.cursor() as plain:
            yield plain
        return
    with connection.wrap_database_errors:
        connection.ensure_connection()
        prepared = driver_cursor(connection)
        try:
            yield prepared
        finally:
            prepared.close()
