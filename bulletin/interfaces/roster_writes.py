"""Checked employees compared with those on file and written, a thousand at a time.

Employees on file are read as plain rows (the HR preview with ``values_list``), never as model
instances, and written with one ``INSERT`` and one ``UPDATE`` per set of changed columns, run
for a whole chunk by the driver's ``executemany``. Measured on 100,000 rows (SQLite):
``bulk_create`` took 25 s, nearly all of it Django preparing each of 1.5 million values
through its field machinery (``get_db_prep_save``, ``field_as_sql``), and ``bulk_update``
builds a ``CASE`` per field and row; the same rows go in here in about a second. The time
stamp is adapted once, by Django's own backend operations.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Final, cast

from django.db import connection, models
from django.utils import timezone

from bulletin.domain.models import Employee
from bulletin.interfaces.roster_rows import RowError

FIELDS = ("name", "department", "location", "timezone", "active", "away_until", "language")
# Every field an import (or the API's bulk upsert) may set, as its values name them.
STORED = (
    "name",
    "department",
    "location_id",
    "timezone",
    "active",
    "away_until",
    "language",
    "slack_user_id",
)
# Where each of STORED sits in a Person, and in a row read by _Writer.on_file.
_PLACES = range(1, len(STORED) + 1)
# A field a row does not set (no "active" column, no Slack id given): left as it is on file.
ABSENT: Final = object()
# One checked employee, kept for 100,000 rows at once: the line it came from, then its value
# for each of STORED (or ABSENT). A tuple: a dict of the same values took 60 % more memory.
Person = tuple[object, ...]
# One row's parameters for the driver.
Params = tuple[Any, ...]
People = dict[str, Person]
# How a model field is shown to a person reviewing an import.
SHOWN_AS = {"location_id": "location"}
# Rows compared and written at a time; SQLite caps the number of parameters in one query.
CHUNK = 1000


@dataclass(frozen=True)
class FieldChange:
    name: str
    old: str
    new: str


@dataclass(frozen=True)
class RowChange:
    """What one good row would do: ``action`` is "create", "update" or "unchanged"."""

    line: int
    email: str
    action: str
    changes: tuple[FieldChange, ...] = ()


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    # Filled by preview_employees only: one entry per good row, in file order.
    rows: list[RowChange] = field(default_factory=list)
    # Each location the import creates or changes, one line each ("new location Pune …").
    locations: list[str] = field(default_factory=list)


def _chunks(people: People) -> Iterator[list[tuple[str, Person]]]:
    items = iter(people.items())
    while chunk := list(islice(items, CHUNK)):
        yield chunk


def given(person: Person) -> Iterator[tuple[str, object]]:
    """The fields a person's row sets, with their values, in the order of STORED."""
    for name, value in zip(STORED, person[1:], strict=True):
        if value is not ABSENT:
            yield name, value


def _stored(emails: list[str]) -> dict[str, dict[str, object]]:
    """The fields an import sets, of each employee on file among ``emails``."""
    rows = Employee.objects.filter(email__in=emails).order_by().values_list("email", *STORED)
    return {email: dict(zip(STORED, rest, strict=True)) for email, *rest in rows}


def write(people: People, report: ImportReport, *, dry_run: bool) -> None:
    """Create or update each employee by email, counting in ``report``; with ``dry_run``
    only count. Call inside the import's transaction."""
    writer = _Writer()
    for chunk in _chunks(people):
        found = writer.on_file([email for email, _ in chunk])
        new: list[tuple[str, Person]] = []
        changed: list[tuple[object, Person, tuple[int, ...]]] = []
        for email, person in chunk:
            if (stored := found.get(email)) is None:
                new.append((email, person))
            elif places := _changed(stored, person):
                changed.append((stored[0], person, places))
        report.created += len(new)
        report.updated += len(changed)
        report.unchanged += len(chunk) - len(new) - len(changed)
        if not dry_run:
            writer.insert(new)
            writer.update(changed)


def preview(people: People, report: ImportReport) -> None:
    """What ``write`` would do, row by row, in ``report.rows``; reads only."""
    for chunk in _chunks(people):
        found = _stored([email for email, _ in chunk])
        for email, person in chunk:
            line = cast(int, person[0])
            if email not in found:
                report.created += 1
                report.rows.append(RowChange(line, email, "create"))
                continue
            changes = _differences(found[email], person)
            if changes:
                report.updated += 1
            else:
                report.unchanged += 1
            action = "update" if changes else "unchanged"
            report.rows.append(RowChange(line, email, action, changes))


def _changed(stored: tuple[object, ...], person: Person) -> tuple[int, ...]:
    """Where the row differs from the employee on file (``stored`` is (id, *STORED) as read,
    so a field sits at the same place in both)."""
    return tuple(
        place
        for place in _PLACES
        if (value := person[place]) is not ABSENT and value != stored[place]
    )


def _differences(before: dict[str, object], person: Person) -> tuple[FieldChange, ...]:
    return tuple(
        FieldChange(SHOWN_AS.get(name, name), _shown(before[name]), _shown(value))
        for name, value in given(person)
        if before[name] != value
    )


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def _field(name: str) -> models.Field[Any, Any]:
    found = Employee._meta.get_field(name)
    assert isinstance(found, models.Field)
    return found


def _column(name: str) -> str:
    return connection.ops.quote_name(_field(name).column)


# An INSERT names these; the rest of the row takes its database default.
_INSERTED = ("email", *STORED, "created_at", "updated_at")
_DEFAULTS = {name: _field(name).get_default() for name in STORED}


class _Writer:
    """Employees looked up and written with the driver's own cursor, without Django's
    per-value conversions either way: the drivers read a day and a switch back as ``date`` and
    ``bool`` themselves and write them as Django would (Django registers SQLite's converters
    by declared type, and its adapter for a day), so values go to the driver as they are and
    compare with the columns as read."""

    def __init__(self) -> None:
        self.table = connection.ops.quote_name(Employee._meta.db_table)
        self.stamp = connection.ops.adapt_datetimefield_value(timezone.now())
        self.columns = ", ".join(_column(name) for name in STORED)

    def on_file(self, emails: list[str]) -> dict[str, tuple[object, ...]]:
        """(id, *STORED) of the employees on file among ``emails``, by email.

        A raw query: Django's ``filter(email__in=…)`` spent 13 ms preparing each chunk's
        thousand emails one by one before sending them (2 s a 100,000 rows)."""
        marks = ", ".join(["%s"] * len(emails))
        sql = (
            f"SELECT {_column('email')}, {_column('id')}, {self.columns} FROM {self.table} "
            f"WHERE {_column('email')} IN ({marks})"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, emails)
            return {email: tuple(rest) for email, *rest in cursor.fetchall()}

    def insert(self, new: list[tuple[str, Person]]) -> None:
        if not new:
            return
        columns = ", ".join(_column(name) for name in _INSERTED)
        marks = ", ".join(["%s"] * len(_INSERTED))
        rows = [self._new_row(email, person) for email, person in new]
        with connection.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {self.table} ({columns}) VALUES ({marks})", rows)

    def _new_row(self, email: str, person: Person) -> Params:
        # Unpacked by name (in the order of STORED): a generator over STORED cost 3 s a
        # 100,000 rows, more than the driver's insert of them.
        _, name, department, location, zone, active, away, language, slack = person
        return (
            email,
            name,
            department,
            location,
            zone,
            _DEFAULTS["active"] if active is ABSENT else active,
            None if away is ABSENT else away,
            "" if language is ABSENT else language,
            _DEFAULTS["slack_user_id"] if slack is ABSENT else slack,
            self.stamp,
            self.stamp,
        )

    def update(self, changed: list[tuple[object, Person, tuple[int, ...]]]) -> None:
        """One UPDATE by id per set of fields that changed: only those are written (an
        unchanged department or location costs no index update)."""
        by_places: dict[tuple[int, ...], list[Params]] = {}
        for pk, person, places in changed:
            params = (*map(person.__getitem__, places), self.stamp, pk)
            by_places.setdefault(places, []).append(params)
        for places, rows in by_places.items():
            names = (*(STORED[place - 1] for place in places), "updated_at")
            assignments = ", ".join(f"{_column(name)} = %s" for name in names)
            sql = f"UPDATE {self.table} SET {assignments} WHERE {_column('id')} = %s"
            with connection.cursor() as cursor:
                cursor.executemany(sql, rows)
