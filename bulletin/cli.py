"""The ``bulletin`` console script: Django's manage.py with Bulletin's settings."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    # Stays outside bulletin.conf: it names the settings module, so comes before any settings.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bulletin.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    argv = argv or sys.argv
    try:
        _refuse_unknown_command(argv)
        execute_from_command_line(argv)
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"bulletin: configuration error: {exc}\n")
        sys.exit(2)


def _refuse_unknown_command(argv: list[str]) -> None:
    """Django answers a misspelt command with two lines and exit 1; a person needs one line,
    and scripts the usage-error code, 2."""
    import django
    from django.core.management import get_commands

    if len(argv) < 2 or argv[1].startswith("-") or argv[1] == "help":
        return
    django.setup()
    if argv[1] not in get_commands():
        sys.stderr.write(f"bulletin: unknown command {argv[1]!r} (bulletin help lists them)\n")
        sys.exit(2)
