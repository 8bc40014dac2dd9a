from typing import Any

from bulletin import conf
from bulletin.dispatch.sender import drain
from bulletin.interfaces.management.base import BulletinCommand


class Command(BulletinCommand):
    help = "Send due deliveries until nothing is due, then exit."

    def handle(self, *args: Any, **options: Any) -> None:
        claimed = drain(conf.options().dispatch_lanes)
        self.stdout.write(f"dispatched {claimed} deliveries")
