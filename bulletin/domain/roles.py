"""Roles as Django groups: who may compose, schedule, approve and administer.

Employee (the inbox only), Announcer (compose, schedule, pause, retry), Approver (approve what
others wrote), Administrator (everything in Bulletin). Kept in step with this table after every
``migrate`` so an upgrade that adds a permission grants it to the right people.
"""

from __future__ import annotations

from typing import Any

EMPLOYEE, ANNOUNCER, APPROVER, ADMINISTRATOR = "Employee", "Announcer", "Approver", "Administrator"

_READ = ["view_announcement", "view_employee", "view_occurrence", "view_delivery", "view_place"]
ROLES: dict[str, list[str]] = {
    EMPLOYEE: [],
    ANNOUNCER: [
        *_READ,
        "add_announcement",
        "change_announcement",
        "delete_announcement",
        "schedule_announcement",
        "retry_delivery",
    ],
    APPROVER: [*_READ, "approve_announcement"],
}


def ensure_roles(**kwargs: Any) -> None:
    """post_migrate: create the groups and give each exactly its permissions."""
    from django.contrib.auth.models import Group, Permission

    bulletin = Permission.objects.filter(content_type__app_label="bulletin")
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(bulletin.filter(codename__in=codenames))
    administrators, _ = Group.objects.get_or_create(name=ADMINISTRATOR)
    administrators.permissions.set(bulletin)
