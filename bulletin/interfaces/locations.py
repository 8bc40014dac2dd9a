"""Locations as an employee file describes them: created or matched by name, and updated where
a row says something about them (country, subdivision, working week).

A file speaks for a location once: two rows that name one location and disagree about one of
its fields are an error naming both lines. A location a file creates takes its zone from the
first row naming it with a zone; a country given without a subdivision replaces the region
(a subdivision belongs to its country), while a subdivision alone keeps the country.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from bulletin.domain.locations import Location
from bulletin.scheduling.working import RegionError, WorkingWeek, WorkingWeekError, check_region

log = logging.getLogger(__name__)

# Columns that describe the row's location rather than the person.
COLUMNS = ("country", "subdivision", "working_week")


class LocationProblem(ValueError):
    """A row's location cannot be accepted; ``line`` is where, str(e) names field and code."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def normalised(name: str, value: str) -> str:
    """A location cell as it is stored: codes upper-cased, a working week in its usual
    spelling (so "mon-fri 8:00-18:00" agrees with "Mon-Fri 08:00-18:00"); WorkingWeekError."""
    value = value.strip()
    if not value:
        return ""
    if name == "working_week":
        return str(WorkingWeek.parse(value))
    return value.upper()


def cell_problem(row: dict[str, str]) -> str | None:
    """What is wrong with a row's location cells on their own (the region is checked once the
    whole file's view of the location is known)."""
    try:
        normalised("working_week", row.get("working_week", ""))
    except WorkingWeekError as exc:
        return f"working_week: {exc}"
    limit = Location._meta.get_field("name").max_length
    if limit and len(row.get("location", "")) > limit:
        return f"location is longer than {limit} characters"
    return None


@dataclass
class Described:
    """What one file says about one location: each field with the line that said it."""

    name: str
    first_line: int
    zone: str = ""
    said: dict[str, tuple[int, str]] = field(default_factory=dict)

    def hear(self, line: int, row: dict[str, str]) -> None:
        if not self.zone and row.get("timezone"):
            self.zone = row["timezone"]
        for column in COLUMNS:
            value = normalised(column, row.get(column, ""))
            if not value:
                continue
            if column in self.said and self.said[column][1] != value:
                first, other = self.said[column]
                raise LocationProblem(
                    line,
                    f"location '{self.name}': {column} '{value}' disagrees with line {first} "
                    f"('{other}')",
                )
            self.said.setdefault(column, (line, value))

    def line_of(self, column: str) -> int:
        return self.said.get(column, (self.first_line, ""))[0]


@dataclass
class Plan:
    """The locations a file names, as they will be after it is imported."""

    locations: dict[str, Location] = field(default_factory=dict)
    new: set[str] = field(default_factory=set)
    changed: dict[str, list[str]] = field(default_factory=dict)

    def zone_of(self, name: str) -> str:
        location = self.locations.get(name)
        return location.timezone if location is not None else ""

    def save(self) -> None:
        """Write the new and changed locations (call inside the import's transaction)."""
        # A location another import created meanwhile is matched, not a unique-name error.
        new = [self.locations[name] for name in sorted(self.new)]
        Location.objects.bulk_create(new, ignore_conflicts=True)
        for name in sorted(self.changed):
            self.locations[name].save(update_fields=[*COLUMNS, "updated_at"])
        for name in sorted(self.new | set(self.changed)):
            event = "location created" if name in self.new else "location updated"
            log.info(event, extra={"location": name})

    def summary(self) -> list[str]:
        """One line per location the import creates or changes, for a person to review:
        ``new location Pune (Asia/Kolkata)``, ``location Leeds: country - → GB``."""
        lines = [f"new location {n} ({self.locations[n].timezone})" for n in sorted(self.new)]
        lines += [f"location {n}: {', '.join(f)}" for n, f in sorted(self.changed.items())]
        return lines


def describe(
    rows: Iterable[tuple[int, dict[str, str]]],
) -> tuple[dict[str, Described], list[LocationProblem]]:
    """What the rows say about each location they name, and each row that disagrees."""
    described: dict[str, Described] = {}
    problems: list[LocationProblem] = []
    for line, row in rows:
        name = row.get("location", "")
        if not name:
            continue
        try:
            described.setdefault(name, Described(name, line)).hear(line, row)
        except LocationProblem as exc:
            problems.append(exc)
    return described, problems


def plan(described: dict[str, Described]) -> tuple[Plan, list[LocationProblem]]:
    """The locations as the file would leave them, and every problem found (one per location)."""
    existing = _existing(list(described))
    result, problems = Plan(), []
    for name, wish in described.items():
        location = existing.get(name)
        if location is None:
            # No zone when no row gives one: then each of its rows must give its own.
            location = Location(name=name, timezone=wish.zone)
            result.new.add(name)
        before = _fields(location)
        _apply(location, wish)
        result.locations[name] = location  # a refused one too: its rows still need its zone
        try:
            check_region(location.country, location.subdivision)
        except RegionError as exc:
            problems.append(LocationProblem(wish.line_of(exc.field), f"{exc.field}: {exc}"))
            continue
        if name not in result.new and (changed := _changes(before, _fields(location))):
            result.changed[name] = changed
    return result, problems


def _apply(location: Location, wish: Described) -> None:
    said = {column: value for column, (_, value) in wish.said.items()}
    if "country" in said:
        if said["country"] != location.country:
            location.subdivision = ""  # the old subdivision was the old country's
        location.country = said["country"]
    if "subdivision" in said:
        location.subdivision = said["subdivision"]
    if "working_week" in said:
        location.working_week = said["working_week"]


def _fields(location: Location) -> dict[str, str]:
    return {column: getattr(location, column) for column in COLUMNS}


def _changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return [f"{c} {before[c] or '-'} → {after[c] or '-'}" for c in COLUMNS if before[c] != after[c]]


def _existing(names: list[str], chunk: int = 1000) -> dict[str, Location]:
    # Chunked: SQLite caps the number of parameters in one query.
    found: dict[str, Location] = {}
    for start in range(0, len(names), chunk):
        for location in Location.objects.filter(name__in=names[start : start + chunk]):
            found[location.name] = location
    return found


def renaming_problem(location: Location, new_name: str) -> str | None:
    """Why ``location`` may not be renamed to ``new_name``, or None. Its employees' rows and
    the audiences that name it hold the name, so a location in use keeps it."""
    if location.pk is None or new_name == location.name:
        return None
    people = location.employees.count()
    if people:
        return (
            f"'{location.name}' has {people} employee(s), whose records and audiences name it; "
            "create a location with the new name and move them instead"
        )
    return None
