from typing import Any

from bulletin.dispatch.planning import tick
from bulletin.interfaces.management.base import BulletinCommand


class Command(BulletinCommand):
    help = "One planning pass: record due occurrences and fan them out."

    def handle(self, *args: Any, **options: Any) -> None:
        result = tick()
        self.stdout.write(
            f"planned {result.occurrences} occurrence(s) for {result.announcements} "
            f"announcement(s); created {result.deliveries} deliveries"
        )
