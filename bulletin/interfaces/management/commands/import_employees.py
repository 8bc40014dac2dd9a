from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from bulletin.interfaces.management.base import BulletinCommand
from bulletin.interfaces.roster import MAX_PROBLEMS, ImportRejected, import_employees


class Command(BulletinCommand):
    # Django's system checks import every URL, view and API schema before the first row is
    # read: 19 MB of a 150 MB budget at 100,000 rows, for nothing this command uses.
    requires_system_checks: list[str] = []
    help = (
        "Upsert employees by email from a CSV with header email,name,department,location,timezone "
        "(more columns allowed; 'active' and 'away_until' are honoured; 'country', 'subdivision' "
        "and 'working_week' describe the row's location, created or matched by name). Every "
        f"problem is listed, one line each (the first {MAX_PROBLEMS:,} by line); nothing is "
        "imported if there is any."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="check and report only")

    def handle(self, *args: Any, file: Path, dry_run: bool, **options: Any) -> None:
        try:
            # Streamed: the import reads and checks the file line by line, never holding it.
            with file.open("rb") as stream:
                report = import_employees(stream, dry_run=dry_run)
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        except ImportRejected as exc:
            # One line per problem, the summary (from CommandError) last.
            for error in exc.errors:
                self.stderr.write(f"{file}:{error}")
            if exc.more:
                self.stderr.write(f"{file}:{exc.more_text()}")
            raise CommandError(str(exc)) from None
        prefix = "would import" if dry_run else "imported"
        self.stdout.write(
            f"{prefix}: {report.created} created, {report.updated} updated, "
            f"{report.unchanged} unchanged"
        )
        for line in report.locations:
            self.stdout.write(line)
