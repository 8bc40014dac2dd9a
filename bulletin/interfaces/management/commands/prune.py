import argparse
from datetime import UTC, timedelta
from typing import Any

from django.core.management.base import CommandParser
from django.utils import timezone

from bulletin.dispatch.retention import DurationError, parse_age, prune
from bulletin.interfaces.management.base import BulletinCommand


def age_option(text: str) -> timedelta:
    # argparse turns this error into "bulletin prune: error: argument --older-than: …", exit 2.
    try:
        return parse_age(text)
    except DurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class Command(BulletinCommand):
    help = (
        "Delete sent, failed and skipped deliveries (and their attempts) last changed longer "
        "ago than --older-than. Occurrences, unknown and unfinished deliveries, and deliveries "
        "behind an inbox item are always kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            required=True,
            type=age_option,
            metavar="DURATION",
            help="a whole number of hours, days or weeks: 12h, 90d, 2w",
        )
        parser.add_argument("--dry-run", action="store_true", help="count only; delete nothing")

    def handle(self, *args: Any, older_than: timedelta, dry_run: bool, **options: Any) -> None:
        cutoff = timezone.now() - older_than
        pruned = prune(cutoff, dry_run=dry_run)
        self.stdout.write(
            f"{'would prune' if dry_run else 'pruned'}: {pruned.deliveries} deliveries, "
            f"{pruned.attempts} attempts (last changed before "
            f"{cutoff.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ})"
        )
