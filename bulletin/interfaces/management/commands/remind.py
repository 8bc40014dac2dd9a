"""``bulletin remind OCCURRENCE_ID --channels email,inapp --key KEY``: remind the people an
occurrence reached who have not acknowledged it (``bulletin.dispatch.reminders``).

``--key`` names this request: run it again with the same key (a retried script, a second
cron run) and the reminder is not sent again. Prints the reminder's occurrence id and how
many deliveries it made; says so when the key's reminder already existed.
"""

from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from bulletin.dispatch.reminders import ReminderRefused, remind
from bulletin.domain.models import Occurrence
from bulletin.interfaces.management.base import BulletinCommand


class Command(BulletinCommand):
    help = "Remind whoever an occurrence reached and has not acknowledged it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("occurrence", type=int, metavar="OCCURRENCE_ID")
        parser.add_argument(
            "--channels", required=True, help="comma-separated: email, slack, inapp"
        )
        parser.add_argument("--key", required=True, help="this request's name (1-64 characters)")

    def handle(self, *args: Any, occurrence: int, channels: str, key: str, **opts: Any) -> None:
        found = Occurrence.objects.select_related("announcement").filter(pk=occurrence).first()
        if found is None:
            raise CommandError(f"no occurrence with id {occurrence}")
        chosen = [name.strip() for name in channels.split(",") if name.strip()]
        try:
            made = remind(found, chosen, key, timezone.now())
        except ReminderRefused as exc:
            raise CommandError(f"{exc.field}: {exc}") from None
        what = "made" if made.created else "already made by this key; nothing sent again"
        count = made.occurrence.delivery_count or 0
        self.stdout.write(f"reminder {made.occurrence.pk} {what}: {count} deliveries")
