"""Writing what the identity provider sends: create, replace, patch, deactivate.

One upsert path: a SCIM User becomes a row in the CSV import's shape and goes through
``roster.validate_rows`` and ``roster.upsert``, so a provider and a CSV file are held to the
same checks (zone, location, lengths...) and leave the same row. Around it, what only SCIM has:
userName unique whatever its case (RFC 7643 §4.1.1), an email change made first by renaming the
employee by pk (refused when another employee has that address), and the fields only SCIM sets.

Each change is one transaction, one audit event (``provisioned`` or ``deprovisioned``, with
the employee's id and the fields that changed) and one log line; nothing changed, nothing
recorded. Deactivation never deletes: history stays, fan-out skips inactive people.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from scim2_models import InvalidValueException, NotFoundException, UniquenessException

from bulletin.domain.models import AuditEvent, Employee
from bulletin.domain.records import AuditAction
from bulletin.interfaces import roster
from bulletin.interfaces.scim.resources import ATTRIBUTE_OF, SCIM_FIELDS, to_row

log = logging.getLogger(__name__)

Actor = AbstractBaseUser | AnonymousUser
# What an audit event compares, before and after.
_WATCHED = (
    "email",
    "name",
    "department",
    "location_id",
    "timezone",
    "active",
    "slack_user_id",
    "language",
    *SCIM_FIELDS,
)


def visible() -> Any:
    """Employees SCIM shows: all but those a SCIM DELETE removed."""
    return Employee.objects.filter(scim_deleted_at__isnull=True)


def find(pk: str) -> Employee:
    if not pk.isdigit() or not (employee := visible().filter(pk=int(pk)).first()):
        raise NotFoundException(detail=f"no User with id {pk!r}")
    return employee


def holding_user_name(name: str) -> Q:
    """The employee whose userName is ``name`` (whatever its case): given by SCIM, or an
    email that stands in for one never given."""
    return Q(scim_user_name__iexact=name) | Q(scim_user_name="", email=name.lower())


def target_of_create(payload: dict[str, Any]) -> Employee | None:
    """The employee a create is about: none (a new one), or one the roster already has that
    no provider claims yet (a CSV import's, or one a SCIM DELETE removed), found by userName
    or email. 409 uniqueness when the userName or the email belongs to a provisioned one."""
    user = str(_field(payload, "userName") or "").strip()
    email = _email_of(payload)
    named = Employee.objects.filter(holding_user_name(user)).first() if user else None
    if named and named.scim_user_name and named.scim_deleted_at is None:
        raise UniquenessException(detail=f"userName: '{user}' is already taken")
    mailed = Employee.objects.filter(email=email).first() if email else None
    if mailed and named and mailed.pk != named.pk:
        raise UniquenessException(detail=f"emails: '{email}' belongs to another User")
    if mailed and mailed.scim_user_name and mailed.scim_deleted_at is None:
        raise UniquenessException(detail=f"emails: '{email}' belongs to another User")
    return named or mailed


def _field(payload: dict[str, Any], name: str) -> Any:
    return next((v for k, v in payload.items() if k.lower() == name.lower()), None)


def _email_of(payload: dict[str, Any]) -> str:
    emails = _field(payload, "emails")
    if not isinstance(emails, list):
        return ""
    values = [e for e in emails if isinstance(e, dict) and isinstance(_field(e, "value"), str)]
    work = [e for e in values if str(_field(e, "type") or "").lower() == "work"]
    chosen = (work or values)[:1]
    return str(_field(chosen[0], "value")).strip().lower() if chosen else ""


def save(resource: Any, employee: Employee | None, actor: Actor) -> Employee:
    """Write a SCIM User over ``employee`` (None: a new one) through the roster's upsert."""
    row, extra = to_row(resource)
    _check_own_fields(extra)
    wanted = _checked(row)
    wanted.set_slack_user_id(row["email"], extra.pop("slack_user_id"))
    try:
        with transaction.atomic():
            return _write(wanted, row["email"], extra, employee, actor)
    except IntegrityError:
        # Another request took the userName or the email between the check and the write.
        raise UniquenessException(detail="userName or emails: already taken") from None


def _write(
    wanted: roster.Wanted,
    email: str,
    extra: dict[str, str],
    employee: Employee | None,
    actor: Actor,
) -> Employee:
    _claim_user_name(extra["scim_user_name"], employee)
    before = _snapshot(employee)
    if employee is not None and employee.email != email:
        _rename(employee, email)
    roster.upsert(wanted)
    written = Employee.objects.select_for_update().get(email=email)
    own = {name: getattr(written, name) for name in extra}
    if own != extra or written.scim_deleted_at is not None:
        # updated_at too: it is the resource's version (its ETag).
        stamp = {"scim_deleted_at": None, "updated_at": timezone.now()}
        Employee.objects.filter(pk=written.pk).update(**extra, **stamp)
        written.refresh_from_db()
    _record(written, before, actor)
    return written


def _checked(row: dict[str, str]) -> roster.Wanted:
    try:
        return roster.validate_rows([(1, row)])
    except roster.ImportRejected as exc:
        error = exc.errors[0]
        attribute = ATTRIBUTE_OF.get(error.column or "", error.column or "")
        message = error.message.removeprefix(f"{error.column}: ")
        raise InvalidValueException(detail=f"{attribute}: {message}") from None


def _check_own_fields(extra: dict[str, str]) -> None:
    """What the roster does not check: the lengths and single lines of SCIM's own fields."""
    for name, value in extra.items():
        limit = getattr(Employee._meta.get_field(name), "max_length", 0) or 0
        attribute = ATTRIBUTE_OF[name]
        if len(value) > limit:
            raise InvalidValueException(detail=f"{attribute} is longer than {limit} characters")
        if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in value):
            raise InvalidValueException(detail=f"{attribute} contains a control character")


def _claim_user_name(name: str, employee: Employee | None) -> None:
    others = Employee.objects.filter(holding_user_name(name))
    if employee is not None:
        others = others.exclude(pk=employee.pk)
    if others.filter(scim_deleted_at__isnull=True).exists():
        raise UniquenessException(detail=f"userName: '{name}' is already taken")
    # A removed employee's old userName is given up to the new holder.
    others.filter(~Q(scim_user_name="")).update(scim_user_name="")


def _rename(employee: Employee, email: str) -> None:
    """Bulletin's key changes before the upsert, so the upsert finds this employee."""
    if Employee.objects.filter(email=email).exclude(pk=employee.pk).exists():
        raise UniquenessException(detail=f"emails: '{email}' belongs to another employee")
    Employee.objects.filter(pk=employee.pk).update(email=email, updated_at=timezone.now())


def _snapshot(employee: Employee | None) -> dict[str, Any]:
    if employee is None:
        return {}
    return {name: getattr(employee, name) for name in _WATCHED}


def _record(employee: Employee, before: dict[str, Any], actor: Actor) -> None:
    after = _snapshot(employee)
    changed = sorted(name for name in _WATCHED if before.get(name, object()) != after[name])
    if before and not changed:
        return
    deactivated = before.get("active") is True and not employee.active
    action = AuditAction.DEPROVISIONED if deactivated else AuditAction.PROVISIONED
    change = "created" if not before else "deactivated" if deactivated else "updated"
    _audit(employee, action, actor, change=change, fields=changed if before else [])


def _audit(employee: Employee, action: str, actor: Actor, **detail: Any) -> None:
    by: Any = actor if isinstance(actor, AbstractBaseUser) else None
    detail = {"employee_id": employee.pk, "email": employee.email, "via": "scim", **detail}
    AuditEvent.objects.create(action=action, actor=by, detail=detail)
    log.info(
        "employee provisioned",
        extra={
            "change": detail["change"],
            "employee_id": employee.pk,
            "actor_id": getattr(by, "pk", None),
            "fields": ",".join(detail.get("fields", [])),
        },
    )


def delete(employee: Employee, actor: Actor) -> None:
    """SCIM's DELETE: deactivated and hidden from SCIM, never deleted (their deliveries and
    acknowledgements stay); a later create with their userName or email brings them back."""
    now = timezone.now()
    with transaction.atomic():
        Employee.objects.filter(pk=employee.pk).update(
            active=False, scim_deleted_at=now, updated_at=now
        )
        _audit(employee, AuditAction.DEPROVISIONED, actor, change="deleted", fields=["active"])
