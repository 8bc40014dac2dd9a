from typing import Any

from bulletin.dispatch.sender import Dispatcher
from bulletin.interfaces.management.base import BulletinCommand


class Command(BulletinCommand):
    help = "Send due deliveries until nothing is due, then exit."

    def handle(self, *args: Any, **options: Any) -> None:
        claimed = Dispatcher().run_until_idle()
        self.stdout.write(f"dispatched {claimed} deliveries")
