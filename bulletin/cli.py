"""The ``bulletin`` console script: Django's manage.py with Bulletin's settings."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bulletin.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(argv or sys.argv)
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"bulletin: configuration error: {exc}\n")
        sys.exit(2)
