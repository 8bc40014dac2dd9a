"""A management command base that keeps errors to one clear line on stderr, never a traceback."""

from __future__ import annotations

import logging
import sys
from typing import Any, NoReturn

from django.core.exceptions import ValidationError
from django.core.management.base import (
    BaseCommand,
    CommandError,
    CommandParser,
    handle_default_options,
)
from django.db import DatabaseError, connections

from bulletin.scheduling.rules import ScheduleError

log = logging.getLogger("bulletin.cli")


def describe(error: ValidationError, names: dict[str, str] | None = None) -> str:
    """'field: message; other: message' — the field (or option) names a person must fix."""
    if not hasattr(error, "error_dict"):
        return "; ".join(error.messages)
    names = names or {}
    return "; ".join(
        f"{names.get(field, field)}: {'; '.join(messages)}"
        for field, messages in error.message_dict.items()
    )


class OneLineParser(CommandParser):
    """argparse prints usage plus the error; a person needs only the error, on one line."""

    def error(self, message: str) -> NoReturn:
        if self.called_from_command_line:
            self.exit(2, f"{self.prog}: error: {message}\n")
        raise CommandError(f"Error: {message}")


class BulletinCommand(BaseCommand):
    # How a model field is spelled on this command's line, for error messages.
    option_names: dict[str, str] = {}

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.__class__ = OneLineParser
        parser.prog = f"bulletin {subcommand}"
        return parser

    def execute(self, *args: Any, **options: Any) -> str | None:
        try:
            return super().execute(*args, **options)
        except ValidationError as exc:
            raise CommandError(describe(exc, self.option_names)) from exc
        except ScheduleError as exc:
            raise CommandError(str(exc)) from exc
        except DatabaseError as exc:
            # Drivers explain over several lines (psycopg adds a hint); stderr gets one.
            raise CommandError(f"database error: {' '.join(str(exc).split())}") from exc

    def run_from_argv(self, argv: list[str]) -> None:
        self._called_from_command_line = True
        parser = self.create_parser(argv[0], argv[1])
        options = parser.parse_args(argv[2:])
        handle_default_options(options)
        cmd_options = vars(options)
        args = cmd_options.pop("args", ())
        try:
            self.execute(*args, **cmd_options)
        except CommandError as exc:
            self._fail(argv[1], str(exc), exc.returncode)
        except Exception as exc:
            log.debug("unexpected error", exc_info=True)
            self._fail(argv[1], f"unexpected error: {exc!r} (LOG_LEVEL=DEBUG shows more)", 1)
        finally:
            connections.close_all()

    def _fail(self, subcommand: str, message: str, code: int) -> NoReturn:
        sys.stderr.write(f"bulletin {subcommand}: {message}\n")
        sys.exit(code)
