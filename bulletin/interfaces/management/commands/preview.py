from datetime import UTC, datetime
from typing import Any

from django.core.management.base import CommandParser
from django.utils import timezone

from bulletin.interfaces.management.base import BulletinCommand
from bulletin.scheduling.rules import CronRule, ScheduleError, fire_times, parse_zone


class Command(BulletinCommand):
    help = "Upcoming fire times of a cron schedule: local time, UTC time, and any DST note."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--cron", required=True, help="5-field cron expression")
        parser.add_argument("--tz", required=True, help="IANA zone, e.g. Europe/London")
        parser.add_argument(
            "--from", dest="start", help="ISO date-time to start after (default: now)"
        )
        parser.add_argument("--count", type=int, default=10)

    def handle(
        self, *args: Any, cron: str, tz: str, start: str | None, count: int, **options: Any
    ) -> None:
        zone = parse_zone(tz)
        rule = CronRule(cron)
        if count < 1:
            raise ScheduleError("--count must be at least 1")
        after = self._start(start, zone) if start else timezone.now()
        for fire in fire_times(rule, zone, after, limit=count):
            utc = fire.utc.astimezone(UTC).isoformat().replace("+00:00", "Z")
            line = f"{fire.local.isoformat()}  {utc}"
            self.stdout.write(f"{line}  # {fire.note}" if fire.note else line)

    def _start(self, value: str, zone: Any) -> datetime:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ScheduleError(f"--from '{value}' is not an ISO date-time") from None
        # A naive --from is read in the schedule's zone (the earlier instant if ambiguous).
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)
