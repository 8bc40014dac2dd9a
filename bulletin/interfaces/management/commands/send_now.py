"""``bulletin send_now ID``: "send now regardless" of working hours, from the command line."""

from typing import Any

from django.core.management.base import CommandError, CommandParser

from bulletin.dispatch import lifecycle
from bulletin.domain.models import Announcement
from bulletin.interfaces.management.base import BulletinCommand


class Command(BulletinCommand):
    help = (
        "Send now the announcement's deliveries that wait for their recipients' working hours "
        "(recorded in the audit log); prints how many were released."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("announcement_id", type=int, metavar="ANNOUNCEMENT_ID")

    def handle(self, *args: Any, announcement_id: int, **opts: Any) -> None:
        announcement = Announcement.objects.filter(pk=announcement_id).first()
        if announcement is None:
            raise CommandError(f"no announcement with id {announcement_id}")
        released = lifecycle.send_now_from_console(announcement)
        self.stdout.write(f"released {released} held deliver{'y' if released == 1 else 'ies'}")
