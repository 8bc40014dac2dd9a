"""Employee CSV import: every bad row reported with its line number, nothing written unless all
rows are good, then one upsert by email in a single transaction.

``preview_employees`` is the dry run the HR screen shows: the same checks, plus what each row
would do (create, update which fields from what to what, or nothing), and never a write.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from bulletin.domain.models import Employee
from bulletin.scheduling.rules import ScheduleError, parse_zone

log = logging.getLogger(__name__)

REQUIRED = ("email", "name", "department", "location", "timezone")
FIELDS = ("name", "department", "location", "timezone", "active")
MAX_BYTES = 50 * 1024 * 1024
_TRUE, _FALSE = {"1", "true", "yes", "y", ""}, {"0", "false", "no", "n"}


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


class ImportRejected(Exception):
    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(f"{len(errors)} bad row(s); nothing was imported")
        self.errors = errors


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        message = f"not valid UTF-8 (byte {exc.start}); save the file as UTF-8 CSV"
        raise ImportRejected([RowError(line, message)]) from None


def _header(reader: Iterator[list[str]]) -> list[str]:
    header = [name.strip().lower() for name in next(reader, [])]
    if repeated := sorted({name for name in header if name and header.count(name) > 1}):
        raise ImportRejected([RowError(1, f"repeated column(s): {', '.join(repeated)}")])
    if missing := [name for name in REQUIRED if name not in header]:
        raise ImportRejected([RowError(1, f"missing column(s): {', '.join(missing)}")])
    return header


def read_rows(data: bytes) -> list[tuple[int, dict[str, str]]]:
    """Rows keyed by column, each with the line it starts on (a quoted value may span lines)."""
    if len(data) > MAX_BYTES:
        raise ImportRejected([RowError(1, f"file is larger than {MAX_BYTES // 2**20} MiB")])
    reader = csv.reader(io.StringIO(_decode(data), newline=""))
    header = _header(reader)
    rows: list[tuple[int, dict[str, str]]] = []
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return rows
        except csv.Error as exc:
            raise ImportRejected([RowError(start, f"unreadable CSV: {exc}")]) from None
        if any(value.strip() for value in values):
            cells = dict(zip(header, (value.strip() for value in values), strict=False))
            rows.append((start, {name: cells.get(name, "") for name in header if name}))


def _too_long(row: dict[str, str]) -> str | None:
    for name in REQUIRED:
        limit = getattr(Employee._meta.get_field(name), "max_length", None)
        if limit and len(row[name]) > limit:
            return f"{name} is longer than {limit} characters"
    return None


def _check(row: dict[str, str]) -> str | None:
    if problem := _too_long(row):
        return problem
    try:
        validate_email(row["email"])
    except ValidationError:
        return f"email '{row['email']}' is not a valid email address"
    if not row["name"]:
        return "name is empty"
    if "\n" in row["name"] or "\r" in row["name"]:
        return "name must be a single line"
    try:
        parse_zone(row["timezone"])
    except ScheduleError as exc:
        return f"timezone: {exc}"
    if row.get("active", "").lower() not in _TRUE | _FALSE:
        return f"active '{row['active']}' is not true or false"
    return None


def validate_rows(rows: list[tuple[int, dict[str, str]]]) -> dict[str, dict[str, object]]:
    """Employees by email, or ImportRejected listing every bad row."""
    return {email: values for email, (_, values) in _validated(rows).items()}


def _validated(
    rows: list[tuple[int, dict[str, str]]],
) -> dict[str, tuple[int, dict[str, object]]]:
    """Each good row's line and values by email, or ImportRejected listing every bad row."""
    errors: list[RowError] = []
    good: dict[str, tuple[int, dict[str, object]]] = {}
    for line, row in rows:
        row["email"] = row["email"].lower()
        if problem := _check(row):
            errors.append(RowError(line, problem))
        elif row["email"] in good:
            first = good[row["email"]][0]
            errors.append(RowError(line, f"duplicate of line {first} ({row['email']})"))
        else:
            good[row["email"]] = (line, _values(row))
    if errors:
        raise ImportRejected(errors)
    return good


def _values(row: dict[str, str]) -> dict[str, object]:
    values: dict[str, object] = {name: row[name] for name in REQUIRED if name != "email"}
    # Without an "active" column a re-import must not re-activate people deactivated by hand.
    if "active" in row:
        values["active"] = row["active"].lower() not in _FALSE
    return values


def upsert(wanted: dict[str, dict[str, object]], *, dry_run: bool = False) -> ImportReport:
    """Create or update employees by email in one transaction, a thousand rows a query.

    ``wanted`` is what ``validate_rows`` returns (the CSV import and the API's bulk upsert both
    come through here); values may also carry ``slack_user_id``.
    """
    report = ImportReport()
    with transaction.atomic():
        existing = _existing(list(wanted))
        new = [Employee(email=e, **values) for e, values in wanted.items() if e not in existing]
        changed = [e for e in existing.values() if _apply(e, wanted[e.email])]
        report.created, report.updated = len(new), len(changed)
        report.unchanged = len(existing) - len(changed)
        if not dry_run:
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
    wanted = _validated(read_rows(data))
    existing = _existing(list(wanted))
    report = ImportReport()
    for email, (line, values) in wanted.items():
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
        FieldChange(name, _shown(getattr(employee, name)), _shown(value))
        for name, value in values.items()
        if getattr(employee, name) != value
    )


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


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
