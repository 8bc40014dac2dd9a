"""``bulletin recount``: check the kept delivery counts against the ledger, or rebuild them.

The counts are kept by every move of the ledger (``bulletin.dispatch.ledger.counts``), so they
never need this in normal running. It is for after a restore from a backup taken mid-write,
or a fix made by hand in SQL: ``--check`` says whether they still agree (exit 1 and one line
per difference if not); without it, the live counts are rebuilt from the deliveries (pruned
counts stay, as the deliveries they counted are gone).
"""

from typing import Any

from django.core.management.base import CommandError, CommandParser

from bulletin.dispatch.ledger import counts
from bulletin.interfaces.management.base import BulletinCommand


class Command(BulletinCommand):
    help = (
        "Check the kept delivery counts against the deliveries (--check), or rebuild them "
        "from the deliveries (after a restore or a fix made by hand in SQL)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check", action="store_true", help="only compare; exit 1 if they differ"
        )

    def handle(self, *args: Any, check: bool, **options: Any) -> None:
        if check:
            self._check()
            return
        counts.recount()
        self.stdout.write("delivery counts rebuilt from the ledger")

    def _check(self) -> None:
        drift = counts.check()
        for (occurrence, channel, state), (kept, counted) in drift.items():
            self.stdout.write(
                f"occurrence {occurrence} {channel} {state}: kept {kept}, ledger {counted}"
            )
        if drift:
            raise CommandError(f"{len(drift)} kept counts differ from the ledger", returncode=1)
        self.stdout.write("delivery counts agree with the ledger")
