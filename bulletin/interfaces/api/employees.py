"""Employees: list, deactivate, and the HR system's bulk upsert.

The bulk upsert is the CSV import's twin: the same row rules (bulletin.interfaces.roster),
all items checked before anything is written, every bad item reported by its index.
"""

import logging
import re
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Router
from ninja.pagination import paginate

from bulletin.domain.models import Employee
from bulletin.interfaces import roster
from bulletin.interfaces.api import examples
from bulletin.interfaces.api.auth import EMPLOYEES_READ, EMPLOYEES_WRITE, needs
from bulletin.interfaces.api.common import Pages, QueryText, found
from bulletin.interfaces.api.errors import Problems, problem
from bulletin.interfaces.api.outputs import EmployeeOut
from bulletin.interfaces.api.schemas import BulkResult, EmployeeIn, replies

log = logging.getLogger(__name__)
router = Router(tags=["employees"])

MAX_ITEMS = 100_000
_FIELDS = {
    "email",
    "name",
    "department",
    "location",
    "timezone",
    "active",
    "away_until",
    "country",
    "subdivision",
    "working_week",
    "language",
}


@router.get(
    "", response=replies({200: list[EmployeeOut]}), **needs(EMPLOYEES_READ, "view_employee")
)
@paginate(Pages)
def list_employees(
    request: HttpRequest,
    department: QueryText | None = None,
    location: QueryText | None = None,
    active: bool | None = None,
    email: QueryText | None = None,
) -> Any:
    """Employees by name; each filter is an exact match (email ignores case; ``location=``
    empty: those without a location)."""
    rows = Employee.objects.order_by("name", "id")
    filters = {"department": department, "location": location or None, "active": active}
    if location is not None:
        rows = rows.filter(location__isnull=not location)
    rows = rows.filter(**{name: value for name, value in filters.items() if value is not None})
    return rows.filter(email=email.strip().lower()) if email is not None else rows


def _row(item: EmployeeIn) -> dict[str, str]:
    """An item in the CSV import's shape: stripped text cells, "active" only when given."""
    row = {name: getattr(item, name).strip() for name in roster.REQUIRED}
    if item.active is not None:
        row["active"] = "true" if item.active else "false"
    if "away_until" in item.model_fields_set:  # null: not away; left out: left alone
        row["away_until"] = item.away_until.isoformat() if item.away_until else ""
    if item.language is not None:  # left out: left alone
        row["language"] = item.language.strip()
    return row


def _problem(error: roster.RowError) -> dict[str, Any]:
    # The roster speaks of lines; here a "line" is the item's index in the list.
    message = re.sub(r"^duplicate of line (\d+)", r"duplicate of item \1", error.message)
    first = message.split(" ", 1)[0].rstrip(":")
    field = "email" if message.startswith("duplicate") else first
    return problem(field if field in _FIELDS else None, message, error.line)


def _checked(items: list[EmployeeIn]) -> roster.Wanted:
    """Wanted values by email, or 422 listing every bad item."""
    try:
        wanted = roster.validate_rows([(index, _row(item)) for index, item in enumerate(items)])
    except roster.ImportRejected as exc:
        # At most the first MAX_PROBLEMS by index, then one item saying how many more.
        more = [problem(None, exc.more_text())] if exc.more else []
        raise Problems([*map(_problem, exc.errors), *more]) from None
    for item in items:
        if item.slack_user_id is not None:
            wanted.set_slack_user_id(item.email.strip().lower(), item.slack_user_id.strip())
    return wanted


@router.post(
    "/bulk",
    response=replies({200: BulkResult}, 400),
    **needs(EMPLOYEES_WRITE, "add_employee", "change_employee", example=examples.EMPLOYEES),
)
def bulk_upsert(request: HttpRequest, items: list[EmployeeIn]) -> dict[str, int]:
    """Upsert employees by email from a JSON list. All or nothing: if any item is bad, each
    bad one is reported with its index and nothing is written."""
    if len(items) > MAX_ITEMS:
        raise Problems([problem(None, f"at most {MAX_ITEMS} employees per request")])
    report = roster.upsert(_checked(items))
    result = {"created": report.created, "updated": report.updated, "unchanged": report.unchanged}
    log.info("employees upserted", extra={f"employees_{k}": v for k, v in result.items()})
    return result


@router.post(
    "/{int:id}/deactivate",
    response=replies({200: EmployeeOut}, 404),
    **needs(EMPLOYEES_WRITE, "change_employee"),
)
def deactivate(request: HttpRequest, id: int) -> Employee:
    """Stop including them in audiences from the next fan-out on; their history stays."""
    employee = found(Employee.objects.all(), id)
    if employee.active:
        employee.active, employee.updated_at = False, timezone.now()
        employee.save(update_fields=["active", "updated_at"])
        log.info("employee deactivated", extra={"employee_id": id, "actor_id": request.user.pk})
    return employee
