"""``bulletin invite --department NAME``: email everyone active in a department a sign-in link
to their inbox (``bulletin.interfaces.accounts.invite``); nobody twice within a day."""

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from bulletin.domain.models import Employee
from bulletin.interfaces.accounts import invite
from bulletin.interfaces.management.base import BulletinCommand


class Command(BulletinCommand):
    help = "Email everyone active in a department a sign-in link to their inbox."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--department", required=True)

    def handle(self, *args: Any, department: str, **opts: Any) -> None:
        if not Employee.objects.filter(active=True, department=department).exists():
            raise CommandError(f"department: no active employee is in {department!r}")
        done = invite(department, None, timezone.now())
        self.stdout.write(f"invited {done.sent}; {done.skipped} invited in the last day skipped")
