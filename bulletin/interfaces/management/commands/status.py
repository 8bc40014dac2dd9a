import json
from typing import Any

from django.core.management.base import CommandParser

from bulletin.domain.models import installation_id
from bulletin.interfaces.health import snapshot
from bulletin.interfaces.management.base import BulletinCommand


class Command(BulletinCommand):
    help = (
        "This installation's id, deliveries by state, the oldest due delivery, the planner's lag "
        "and the second copies refused."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", dest="as_json", help="one JSON object")

    def handle(self, *args: Any, as_json: bool = False, **options: Any) -> None:
        # The id every idempotency key contains: what to tell a receiver's operator, and
        # the way to tell two installations (or a rebuilt database) apart.
        status = {**snapshot(), "installation": installation_id()}
        if as_json:
            self.stdout.write(json.dumps(status, sort_keys=True))
            return
        self.stdout.write(f"installation: {status['installation']}")
        for state, count in status["deliveries"].items():
            self.stdout.write(f"{state:>10}  {count}")
        self.stdout.write(
            f"oldest due delivery: {status['oldest_due_at'] or 'none'}"
            f" ({status['oldest_due_age_seconds']:.0f}s)"
        )
        self.stdout.write(f"planner lag: {status['planner_lag_seconds']:.0f}s")
        self.stdout.write(f"occurrences missed: {status['occurrences'].get('missed', 0)}")
        refused = status["duplicates_prevented"]
        detail = ", ".join(f"{reason} {n}" for reason, n in refused.items() if n)
        self.stdout.write(
            f"duplicates prevented: {sum(refused.values())}" + (f" ({detail})" if detail else "")
        )
