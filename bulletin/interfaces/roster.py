"""Employee CSV import: every problem reported in one pass, each with its line number (and its
column when it is about one cell), nothing written unless all rows are good, then one upsert by
email in a single transaction.

One pass finds them all: missing or repeated columns (line 1; the rows' other cells are still
checked, a missing column's cells are not reported row after row), misshapen rows, and every
bad cell of every other row (:mod:`bulletin.interfaces.roster_rows` says which problems stop
the reading at once instead). At most ``MAX_PROBLEMS`` are listed, the first by line, and the
rest counted.

Columns: ``email,name,department,location,timezone`` are required; ``active`` and
``away_until`` (the last day of leave, YYYY-MM-DD; empty: not away) are honoured when present;
``country``, ``subdivision`` and ``working_week`` describe the row's location, which is created
or matched by name (:mod:`bulletin.interfaces.locations`). An empty ``timezone`` takes the
location's zone.

``preview_employees`` is the dry run the HR screen shows: the same checks, plus what each row
would do (create, update which fields from what to what, or nothing), and never a write.

Built for 100,000 rows (``make bench BENCH=employee-import``): the file is read as a stream
(:mod:`bulletin.interfaces.roster_rows`), each row is checked as it is read with every answer
that depends on a cell's value alone worked out once per distinct value, and the employees are
compared and written a thousand at a time (:mod:`bulletin.interfaces.roster_writes`).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import cast

from django.core.validators import EmailValidator, validate_email
from django.db import transaction

from bulletin.conf import BOOLEAN_WORDS, boolean
from bulletin.domain.languages import UnknownLanguage, canonical
from bulletin.domain.models import Employee
from bulletin.interfaces import locations, roster_writes
from bulletin.interfaces.roster_rows import (
    MAX_BYTES,
    MAX_PROBLEMS,
    REQUIRED,
    SAVE_AS,
    ImportRejected,
    Problems,
    Records,
    RowError,
    Source,
    read_rows,
)
from bulletin.interfaces.roster_writes import ABSENT, FieldChange, ImportReport, RowChange
from bulletin.scheduling.rules import ScheduleError, parse_zone

__all__ = [
    "MAX_BYTES",
    "MAX_PROBLEMS",
    "REQUIRED",
    "SAVE_AS",
    "FieldChange",
    "ImportRejected",
    "ImportReport",
    "RowChange",
    "RowError",
    "Wanted",
    "import_employees",
    "preview_employees",
    "read_rows",
    "upsert",
    "validate_rows",
]

log = logging.getLogger(__name__)

OPTIONAL = ("active", "away_until", "language", *locations.COLUMNS)
FIELDS = roster_writes.FIELDS
# The cells many rows share (a file names a few departments, locations and zones), judged
# once per combination; a row's own cells (email, name, away_until) are checked each time.
_SHARED: tuple[str, ...] = ("department", "location", "timezone", "country", "subdivision")
_SHARED += ("working_week", "active")
_BLANKS = ("",) * len(_SHARED)
# Combinations remembered at most: a file whose every row is its own combination (a department
# per person) must not pay for remembering them all.
_REMEMBERED = 10_000
_UNJUDGED = ()  # a verdict is None or four values: the empty tuple is "not judged yet"
# Where a person's location and zone sit in a roster_writes.Person (the line comes first).
_LOCATION = 1 + roster_writes.STORED.index("location_id")
_ZONE = 1 + roster_writes.STORED.index("timezone")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Unicode's control characters (category Cc) are exactly these 65 code points: one search of a
# row finds whether any cell holds one (the per-character category look-up cost 6 s a 100k rows).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# The columns whose length the employee's own fields limit (a location's name is checked with
# the location's cells).
_LIMITS = tuple(
    (name, limit)
    for name in REQUIRED
    if name != "location" and (limit := getattr(Employee._meta.get_field(name), "max_length", 0))
)
_LIMIT = dict(_LIMITS)
# What a missing column's cells are taken to be, so that its absence is reported once (on line
# 1) rather than as a problem on every row; the email is made unique per line below.
_STAND_INS = {"name": "(missing)", "department": "", "location": "", "timezone": ""}
# The column a location's problem is about: "country: …" or "location 'Leeds': country '…' …".
_LOCATION_COLUMN = re.compile(r"^(?:location '.*?': )?(\w+)")


@dataclass
class Wanted:
    """A checked file: each employee's line and values by email (a ``roster_writes.Person``),
    and the locations as the import will leave them."""

    people: roster_writes.People
    places: locations.Plan

    def set_slack_user_id(self, email: str, member_id: str) -> None:
        person = self.people[email]
        self.people[email] = (*person[:-1], member_id)


def _control_problem(name: str, value: str) -> str | None:
    # A cell's first check, so that no later message echoes a line break onto the person's
    # screen or log.
    if "\n" in value or "\r" in value:
        return f"{name} must be a single line"
    if any(unicodedata.category(character) == "Cc" for character in value):
        return f"{name} contains a control character"
    return None


def _location_problem(problem: locations.LocationProblem) -> RowError:
    match = _LOCATION_COLUMN.match(str(problem))
    column = match.group(1) if match and match.group(1) in locations.COLUMNS else "location"
    return RowError(problem.line, str(problem), column)


def _away_problem(text: str) -> str | None:
    """Empty is "not away"; otherwise a real calendar day, written YYYY-MM-DD."""
    if not text:
        return None
    try:
        if _DAY.match(text):
            date.fromisoformat(text)
            return None
    except ValueError:
        pass  # 2027-02-30
    return f"away_until '{text}' is not a date (YYYY-MM-DD)"


class _Emails:
    """Django's ``validate_email``, its verdict on each domain remembered.

    Measured: 16 µs an address, a third of the import's whole budget at 20,000 rows/s, nearly
    all of it the domain's regular expression and the lazy pattern's proxy. The user part is
    still matched by Django's own pattern and each domain judged once by Django's own validator.
    """

    def __init__(self) -> None:
        pattern = EmailValidator.user_regex
        self._user = re.compile(pattern.pattern, pattern.flags)
        self._domains: dict[str, bool] = {}

    def valid(self, value: str) -> bool:
        if not value or "@" not in value or len(value) > 320:
            return False
        user, domain = value.rsplit("@", 1)
        if not self._user.match(user):
            return False
        if (known := self._domains.get(domain)) is None:
            known = domain in validate_email.domain_allowlist or bool(
                validate_email.validate_domain_part(domain)
            )
            self._domains[domain] = known
        return known


class _Intake:
    """One file's rows as they are checked, in file order: the good ones by email, every
    problem with its line, and what the rows say about each location.

    A file repeats a handful of zones, departments, locations and days many thousand times:
    every answer that depends on a cell's value alone is worked out once per distinct value,
    and equal values are kept as one string.
    """

    def __init__(self, problems: Problems | None = None, missing: Iterable[str] = ()) -> None:
        self.people: roster_writes.People = {}
        self.problems = Problems() if problems is None else problems
        # A zone left to a row's location cannot be worked out without either column.
        self._zones_knowable = not {"location", "timezone"} & set(missing)
        self._described: dict[str, locations.Described] = {}
        self._heard: set[tuple[str, str, str, str]] = set()
        self._emails = _Emails()
        self._zones: dict[str, str | None] = {}
        self._cells: dict[tuple[str, str], str | None] = {}
        self._days: dict[str, tuple[str | None, date | None]] = {}
        self._switches: dict[str, bool | None] = {}
        self._languages: dict[str, tuple[str | None, str]] = {}
        self._same: dict[str, str] = {}
        self._shared: dict[tuple[object, ...], tuple[object, ...] | None] = {}
        self._settled: set[tuple[object, ...]] = set()

    def take(self, line: int, row: dict[str, str]) -> None:
        email = row["email"] = row["email"].lower()
        shared = (*map(row.get, _SHARED, _BLANKS), "active" in row)
        if (known := self._shared.get(shared, _UNJUDGED)) is _UNJUDGED:
            known = self._judge(row)
            if len(self._shared) < _REMEMBERED:
                self._shared[shared] = known
        if known and email not in self.people and self._own_cells_good(row):
            # Every check passes (those of the shared cells judged before): what _problem
            # would find, measured a quarter quicker over the 100,000 rows' checks.
            settled = shared in self._settled or self._hear(line, row)
            if settled and len(self._settled) < _REMEMBERED:
                self._settled.add(shared)  # its location has heard all these cells can say
            away = self._day(row["away_until"])[1] if "away_until" in row else ABSENT
            language = self._language(row["language"])[1] if "language" in row else ABSENT
            self.people[email] = (line, row["name"], *known, away, language, ABSENT)
            return
        bad = False
        for column in row:
            if problem := self._cell_problem(column, row[column]):
                self.problems.add(line, problem, column)
                bad = True
        if bad:
            return
        if (first := self.people.get(email)) is not None:
            self.problems.add(line, f"duplicate of line {first[0]} ({email})", "email")
        else:
            self._hear(line, row)
            self.people[email] = self._person(line, row)

    def _judge(self, row: dict[str, str]) -> tuple[object, ...] | None:
        """The checks of the cells many rows share (``_SHARED``): their values as the
        person keeps them (department, location, zone, active), or None if any fails."""
        if _CONTROL.search("".join(row.get(name, "") for name in _SHARED)):
            return None
        if self._location_cells(row) or any(
            len(row[name]) > limit for name, limit in _LIMITS if name in _SHARED
        ):
            return None
        zone, active = row["timezone"], row.get("active", "")
        if (zone and self._zone_problem(zone)) or (active and self._switch(active) is None):
            return None
        return self._person(0, row)[2:6]

    def _own_cells_good(self, row: dict[str, str]) -> bool:
        """Whether the cells of the row's own (email, name, away_until, language) pass every
        check."""
        email, name, away = row["email"], row["name"], row.get("away_until", "")
        if _CONTROL.search(email + name + away) or not name or self._day(away)[0]:
            return False
        if self._language(row.get("language", ""))[0]:
            return False
        too_long = len(email) > _LIMIT["email"] or len(name) > _LIMIT["name"]
        return not too_long and self._emails.valid(email)

    def _cell_problem(self, column: str, value: str) -> str | None:
        """What is wrong with one cell on its own: the first check it fails."""
        if _CONTROL.search(value):
            return _control_problem(column, value)
        if (limit := _LIMIT.get(column)) and len(value) > limit:
            return f"{column} is longer than {limit} characters"
        if column == "email" and not self._emails.valid(value):
            return f"email '{value}' is not a valid email address"
        if column == "name" and not value:
            return "name is empty"
        # Empty: the location's zone, checked once locations are known.
        if column == "timezone" and value:
            return self._zone_problem(value)
        # Bulletin's one vocabulary of switches; an empty cell is "active".
        if column == "active" and value and self._switch(value) is None:
            return f"active '{value}' is not true or false ({BOOLEAN_WORDS})"
        if column == "away_until":
            return self._day(value)[0]
        if column == "language":
            return self._language(value)[0]
        if column in ("location", "working_week"):
            return self._location_cell(column, value)
        return None

    def _location_cell(self, column: str, value: str) -> str | None:
        key = (column, value)
        if key not in self._cells:
            self._cells[key] = locations.cell_problem({column: value})
        return self._cells[key]

    def _location_cells(self, row: dict[str, str]) -> str | None:
        return self._location_cell("working_week", row.get("working_week", "")) or (
            self._location_cell("location", row.get("location", ""))
        )

    def _zone_problem(self, name: str) -> str | None:
        if name not in self._zones:
            try:
                parse_zone(name)
                self._zones[name] = None
            except ScheduleError as exc:
                self._zones[name] = f"timezone: {exc}"
        return self._zones[name]

    def _switch(self, text: str) -> bool | None:
        if text not in self._switches:
            self._switches[text] = boolean(text)
        return self._switches[text]

    def _day(self, text: str) -> tuple[str | None, date | None]:
        """What is wrong with an ``away_until`` cell, or the day it names (None: not away)."""
        if text not in self._days:
            problem = _away_problem(text)
            day = date.fromisoformat(text) if text and not problem else None
            self._days[text] = (problem, day)
        return self._days[text]

    def _language(self, text: str) -> tuple[str | None, str]:
        """What is wrong with a ``language`` cell, or the tag in canonical form ("": the
        organisation's default). A file names a few languages: each is checked once."""
        if text not in self._languages:
            try:
                self._languages[text] = (None, canonical(text))
            except UnknownLanguage as exc:
                self._languages[text] = (f"language: {exc}", "")
        return self._languages[text]

    def _hear(self, line: int, row: dict[str, str]) -> bool:
        """What the row says about its location; a disagreement is kept for the report.
        True when a row in the same words would tell nothing new."""
        name = row.get("location", "")
        if not name:
            return True
        key = (
            name,
            row.get("country", ""),
            row.get("subdivision", ""),
            row.get("working_week", ""),
        )
        wish = self._described.get(name)
        if wish is None:
            wish = self._described[name] = locations.Described(name, line)
        elif key in self._heard and (wish.zone or not row["timezone"]):
            return True  # said before in these very words, and heard without a disagreement
        try:
            wish.hear(line, row)
        except locations.LocationProblem as exc:
            error = _location_problem(exc)
            self.problems.add(error.line, error.message, error.column)
            return False
        self._heard.add(key)
        return bool(wish.zone or not row["timezone"])

    def _person(self, line: int, row: dict[str, str]) -> roster_writes.Person:
        """The employee's field values in the order of ``roster_writes.STORED``; an empty
        timezone is the location's, filled in once locations are known."""
        same = self._same
        location = same.setdefault(row["location"], row["location"])
        # Without an "active" column a re-import must not re-activate people deactivated by
        # hand; without "away_until", leave booked by hand stays.
        active = self._switch(row["active"]) is not False if "active" in row else ABSENT
        away = self._day(row["away_until"])[1] if "away_until" in row else ABSENT
        language = self._language(row["language"])[1] if "language" in row else ABSENT
        return (
            line,
            row["name"],
            same.setdefault(row["department"], row["department"]),
            location or None,
            same.setdefault(row["timezone"], row["timezone"]),
            active,
            away,
            language,
            ABSENT,  # slack_user_id: the API's bulk upsert may give one
        )

    def finish(self) -> Wanted:
        """The checked file, or ImportRejected listing every problem by line."""
        places, refused = locations.plan(self._described)
        for refusal in map(_location_problem, refused):
            self.problems.add(refusal.line, refusal.message, refusal.column)
        for email, person in self.people.items():
            if person[_ZONE]:
                continue
            name = str(person[_LOCATION] or "")
            if zone := places.zone_of(name):
                self.people[email] = (*person[:_ZONE], zone, *person[_ZONE + 1 :])
            elif self._zones_knowable:
                where = f"location '{name}' has no zone yet" if name else "the row has no location"
                message = f"timezone is empty and {where}: give the employee's zone"
                self.problems.add(cast(int, person[0]), message, "timezone")
        if self.problems:
            raise self.problems.rejected()
        return Wanted(self.people, places)


def validate_rows(rows: Iterable[tuple[int, dict[str, str]]]) -> Wanted:
    """Employees by email and the locations they name, or ImportRejected listing every
    problem (the first MAX_PROBLEMS by line)."""
    intake = _Intake()
    for line, row in rows:
        intake.take(line, row)
    return intake.finish()


def _checked(source: Source) -> Wanted:
    """The file read and checked row by row as it streams in: only the good rows' values
    are kept, never the file or its rows."""
    problems = Problems()
    records = Records(source, (*REQUIRED, *OPTIONAL), problems)
    columns, missing = records.columns, records.missing
    intake = _Intake(problems, missing)
    if not missing:
        for line, cells in records:
            intake.take(line, dict(zip(columns, cells, strict=True)))
        return intake.finish()
    stand_ins = {name: _STAND_INS.get(name, "") for name in missing}
    for line, cells in records:
        row = dict(zip(columns, cells, strict=True)) | stand_ins
        if "email" in missing:  # unique, so that no row is taken for another's duplicate
            row["email"] = f"line{line}@missing-column.invalid"
        intake.take(line, row)
    return intake.finish()


def upsert(wanted: Wanted, *, dry_run: bool = False) -> ImportReport:
    """Create or update employees by email in one transaction, a thousand rows a query, after
    the locations they name.

    ``wanted`` is what ``validate_rows`` returns (the CSV import and the API's bulk upsert both
    come through here); values may also carry ``slack_user_id``.
    """
    report = ImportReport(locations=wanted.places.summary())
    with transaction.atomic():
        if not dry_run:
            wanted.places.save()
        roster_writes.write(wanted.people, report, dry_run=dry_run)
    return report


def import_employees(data: Source, *, dry_run: bool = False) -> ImportReport:
    """Upsert employees by email from a CSV file's bytes or an open binary file. All rows
    are checked first; any bad row rejects the file."""
    report = upsert(_checked(data), dry_run=dry_run)
    log.info(
        "employees imported",
        extra={
            "employees_created": report.created,
            "employees_updated": report.updated,
            "dry_run": dry_run,
        },
    )
    return report


def preview_employees(data: Source) -> ImportReport:
    """What importing ``data`` would do, row by row; ImportRejected as for an import.

    Reads only: nothing is written, whatever the file holds.
    """
    wanted = _checked(data)
    report = ImportReport(locations=wanted.places.summary())
    roster_writes.preview(wanted.people, report)
    return report
