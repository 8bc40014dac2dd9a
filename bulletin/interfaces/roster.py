"""Employee CSV import: every bad row reported with its line number, nothing written unless all
rows are good, then one upsert by email in a single transaction.

Columns: ``email,name,department,location,timezone`` are required; ``active`` and
``away_until`` (the last day of leave, YYYY-MM-DD; empty: not away) are honoured when present;
``country``, ``subdivision`` and ``working_week`` describe the row's location, which is created
or matched by name (:mod:`bulletin.interfaces.locations`). An empty ``timezone`` takes the
location's zone.

``preview_employees`` is the dry run the HR screen shows: the same checks, plus what each row
would do (create, update which fields from what to what, or nothing), and never a write.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from bulletin.conf import BOOLEAN_WORDS, boolean
from bulletin.domain.models import Employee
from bulletin.interfaces import locations
from bulletin.scheduling.rules import ScheduleError, parse_zone

log = logging.getLogger(__name__)

REQUIRED = ("email", "name", "department", "location", "timezone")
OPTIONAL = ("active", "away_until", *locations.COLUMNS)
FIELDS = ("name", "department", "location", "timezone", "active", "away_until")
# How a model field is shown to a person reviewing an import.
SHOWN_AS = {"location_id": "location"}
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_BYTES = 50 * 1024 * 1024
SAVE_AS = "save the file as “CSV UTF-8” and import it again"


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


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


@dataclass
class Wanted:
    """A checked file: each employee's values by email (with the line they came from), and
    the locations as the import will leave them."""

    people: dict[str, tuple[int, dict[str, object]]]
    places: locations.Plan


class ImportRejected(Exception):
    def __init__(self, errors: list[RowError], summary: str = "") -> None:
        super().__init__(summary or f"{len(errors)} bad row(s); nothing was imported")
        self.errors = errors


def _whole_file(line: int, message: str) -> ImportRejected:
    """A problem with the file itself (size, encoding, header): no row count to report."""
    return ImportRejected([RowError(line, message)], "the file was not imported")


def _decode(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _whole_file(1, f"the file is UTF-16, not UTF-8; {SAVE_AS}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        message = f"not valid UTF-8 (byte {exc.start}); {SAVE_AS}"
        raise _whole_file(line, message) from None
    if "\0" in text:
        # UTF-16 without a byte-order mark decodes as UTF-8 full of NULs.
        line = text[: text.index("\0")].count("\n") + 1
        raise _whole_file(line, f"contains a NUL character (a UTF-16 file?); {SAVE_AS}")
    return text


def _header(reader: Iterator[list[str]]) -> list[str]:
    first = next(reader, None)
    if first is None:
        raise _whole_file(1, f"the file is empty; its first line must be {','.join(REQUIRED)}")
    header = [name.strip().lower() for name in first]
    if repeated := sorted({name for name in header if name and header.count(name) > 1}):
        raise _whole_file(1, f"repeated column(s): {', '.join(repeated)}")
    if missing := [name for name in REQUIRED if name not in header]:
        hint = " (separate columns with commas, not semicolons)" if ";" in ",".join(first) else ""
        raise _whole_file(1, f"missing column(s): {', '.join(missing)}{hint}")
    return header


def _shape_problem(header: list[str], values: list[str]) -> str | None:
    """A row with cells the header does not name, or without a required one, is misquoted
    (an unquoted comma in a name), not a row to guess at."""
    extra = values[len(header) :]
    short = [name for name in REQUIRED if header.index(name) >= len(values)]
    if any(value.strip() for value in extra) or short:
        return (
            f"{len(values)} values, but the header has {len(header)} columns "
            "(put a value that contains a comma in double quotes)"
        )
    return None


def read_rows(data: bytes) -> list[tuple[int, dict[str, str]]]:
    """Rows keyed by column, each with the line it starts on (a quoted value may span lines).

    Misshapen rows are reported together with their lines; the file's own problems (size,
    encoding, header, unreadable CSV) stop at the first.
    """
    if len(data) > MAX_BYTES:
        raise _whole_file(1, f"the file is larger than {MAX_BYTES // 2**20} MiB")
    reader = csv.reader(io.StringIO(_decode(data), newline=""))
    header = _header(reader)
    rows: list[tuple[int, dict[str, str]]] = []
    misshapen: list[RowError] = []
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise _whole_file(start, f"unreadable CSV: {exc}") from None
        if not any(value.strip() for value in values):
            continue
        if problem := _shape_problem(header, values):
            misshapen.append(RowError(start, problem))
            continue
        cells = dict(zip(header, (value.strip() for value in values), strict=False))
        rows.append((start, {name: cells.get(name, "") for name in header if name}))
    if misshapen:
        raise ImportRejected(misshapen)
    return rows


def _too_long(row: dict[str, str]) -> str | None:
    for name in REQUIRED:
        if name == "location":
            continue  # the location's own name: checked with the location's cells
        limit = getattr(Employee._meta.get_field(name), "max_length", None)
        if limit and len(row[name]) > limit:
            return f"{name} is longer than {limit} characters"
    return None


def _control_problem(row: dict[str, str]) -> str | None:
    # First, so that no later message echoes a line break onto the person's screen or log.
    for name in (*REQUIRED, *OPTIONAL):
        value = row.get(name, "")
        if "\n" in value or "\r" in value:
            return f"{name} must be a single line"
        if any(unicodedata.category(character) == "Cc" for character in value):
            return f"{name} contains a control character"
    return None


def _check(row: dict[str, str]) -> str | None:
    if problem := _control_problem(row) or _too_long(row) or locations.cell_problem(row):
        return problem
    try:
        validate_email(row["email"])
    except ValidationError:
        return f"email '{row['email']}' is not a valid email address"
    if not row["name"]:
        return "name is empty"
    try:
        if row["timezone"]:  # empty: the location's zone, checked once locations are known
            parse_zone(row["timezone"])
    except ScheduleError as exc:
        return f"timezone: {exc}"
    # Bulletin's one vocabulary of switches; an empty cell is "active".
    if row.get("active", "") and boolean(row["active"]) is None:
        return f"active '{row['active']}' is not true or false ({BOOLEAN_WORDS})"
    return _away_problem(row.get("away_until", ""))


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


def validate_rows(rows: list[tuple[int, dict[str, str]]]) -> Wanted:
    """Employees by email and the locations they name, or ImportRejected listing every bad
    row."""
    errors: list[RowError] = []
    good = _good_rows(rows, errors)
    described, disagreements = locations.describe(good.values())
    places, refused = locations.plan(described)
    errors += [RowError(problem.line, str(problem)) for problem in disagreements + refused]
    people = {email: (line, _values(row, places)) for email, (line, row) in good.items()}
    errors += [RowError(line, v) for line, v in people.values() if isinstance(v, str)]
    if errors:
        raise ImportRejected(sorted(errors, key=lambda error: error.line))
    return Wanted({e: (line, v) for e, (line, v) in people.items() if isinstance(v, dict)}, places)


def _good_rows(
    rows: list[tuple[int, dict[str, str]]], errors: list[RowError]
) -> dict[str, tuple[int, dict[str, str]]]:
    """Rows that are good on their own, by email; each bad one is added to ``errors``."""
    good: dict[str, tuple[int, dict[str, str]]] = {}
    for line, row in rows:
        row["email"] = row["email"].lower()
        if problem := _check(row):
            errors.append(RowError(line, problem))
        elif row["email"] in good:
            first = good[row["email"]][0]
            errors.append(RowError(line, f"duplicate of line {first} ({row['email']})"))
        else:
            good[row["email"]] = (line, row)
    return good


def _values(row: dict[str, str], places: locations.Plan) -> dict[str, object] | str:
    """The employee's field values, or what keeps the row from having them."""
    name = row["location"]
    zone = row["timezone"] or places.zone_of(name)
    if not zone:
        where = f"location '{name}' has no zone yet" if name else "the row has no location"
        return f"timezone is empty and {where}: give the employee's zone"
    values: dict[str, object] = {
        "name": row["name"],
        "department": row["department"],
        "location_id": name or None,
        "timezone": zone,
    }
    # Without an "active" column a re-import must not re-activate people deactivated by hand;
    # without "away_until", leave booked by hand stays.
    if "active" in row:
        values["active"] = boolean(row["active"]) is not False
    if "away_until" in row:
        values["away_until"] = date.fromisoformat(row["away_until"]) if row["away_until"] else None
    return values


def upsert(wanted: Wanted, *, dry_run: bool = False) -> ImportReport:
    """Create or update employees by email in one transaction, a thousand rows a query, after
    the locations they name.

    ``wanted`` is what ``validate_rows`` returns (the CSV import and the API's bulk upsert both
    come through here); values may also carry ``slack_user_id``.
    """
    people = {email: values for email, (_, values) in wanted.people.items()}
    report = ImportReport(locations=wanted.places.summary())
    with transaction.atomic():
        existing = _existing(list(people))
        new = [Employee(email=e, **values) for e, values in people.items() if e not in existing]
        changed = [e for e in existing.values() if _apply(e, people[e.email])]
        report.created, report.updated = len(new), len(changed)
        report.unchanged = len(existing) - len(changed)
        if not dry_run:
            wanted.places.save()
            Employee.objects.bulk_create(new, batch_size=1000)
            fields = [*FIELDS, "slack_user_id", "updated_at"]
            Employee.objects.bulk_update(changed, fields, batch_size=1000)
    return report


def import_employees(data: bytes, *, dry_run: bool = False) -> ImportReport:
    """Upsert employees by email. All rows are checked first; any bad row rejects the file."""
    report = upsert(validate_rows(read_rows(data)), dry_run=dry_run)
    log.info(
        "employees imported",
        extra={
            "employees_created": report.created,
            "employees_updated": report.updated,
            "dry_run": dry_run,
        },
    )
    return report


def preview_employees(data: bytes) -> ImportReport:
    """What importing ``data`` would do, row by row; ImportRejected as for an import.

    Reads only: nothing is written, whatever the file holds.
    """
    wanted = validate_rows(read_rows(data))
    existing = _existing(list(wanted.people))
    report = ImportReport(locations=wanted.places.summary())
    for email, (line, values) in wanted.people.items():
        employee = existing.get(email)
        if employee is None:
            report.created += 1
            report.rows.append(RowChange(line, email, "create"))
            continue
        changes = _differences(employee, values)
        if changes:
            report.updated += 1
        else:
            report.unchanged += 1
        report.rows.append(RowChange(line, email, "update" if changes else "unchanged", changes))
    return report


def _differences(employee: Employee, values: dict[str, object]) -> tuple[FieldChange, ...]:
    return tuple(
        FieldChange(SHOWN_AS.get(name, name), _shown(getattr(employee, name)), _shown(value))
        for name, value in values.items()
        if getattr(employee, name) != value
    )


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


def _existing(emails: list[str], chunk: int = 1000) -> dict[str, Employee]:
    # Chunked: SQLite caps the number of parameters in one query.
    found: dict[str, Employee] = {}
    for start in range(0, len(emails), chunk):
        for employee in Employee.objects.filter(email__in=emails[start : start + chunk]):
            found[employee.email] = employee
    return found


def _apply(employee: Employee, values: dict[str, object]) -> bool:
    changed = False
    for name, value in values.items():
        if getattr(employee, name) != value:
            setattr(employee, name, value)
            changed = True
    if changed:
        employee.updated_at = timezone.now()
    return changed
