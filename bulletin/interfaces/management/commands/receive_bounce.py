"""``bulletin receive_bounce``: one returned message on standard input, from an MTA.

Postfix: an alias ``bounces: "|/path/to/bulletin receive_bounce"`` (local(8), "External command
delivery": it runs the command with ``ORIGINAL_RECIPIENT``, the address before any aliasing,
extension and all). Exim: a pipe transport whose command passes the address itself,
``--recipient $local_part$local_part_suffix@$domain`` (its router has ``local_part_suffix =
+*``).

Exit status is what the MTA acts on (sysexits.h, which both follow): 0 once the message is
kept, even unreadable (an MTA that bounced a bounce would send it to no one: bounces have an
empty return path); 75, EX_TEMPFAIL, when the database cannot be reached, so the MTA keeps
the message queued and tries again later.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import InterfaceError, OperationalError

from bulletin.interfaces.mailboxes import read_limited, take
from bulletin.interfaces.management.base import BulletinCommand

EX_TEMPFAIL = 75


class Command(BulletinCommand):
    help = (
        "Read one returned message (a bounce, a complaint, an automatic reply) on standard "
        "input, as an MTA's alias or pipe transport hands it, and record it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--recipient",
            default="",
            metavar="ADDRESS",
            help="the address the message was delivered to (default: $ORIGINAL_RECIPIENT, "
            "as Postfix sets it, else the message's Delivered-To/X-Original-To)",
        )

    def handle(self, *args: Any, recipient: str, **options: Any) -> None:
        # Not a knob: Postfix's local(8) sets it for this one delivery (see above).
        envelope_to = recipient or os.environ.get("ORIGINAL_RECIPIENT", "")
        raw = read_limited(sys.stdin.buffer)
        try:
            recorded = take(raw, source="pipe", envelope_to=envelope_to)
        except (OperationalError, InterfaceError) as exc:
            detail = " ".join(str(exc).split())
            raise CommandError(
                f"database unreachable, the MTA should retry: {detail}", returncode=EX_TEMPFAIL
            ) from exc
        self.stdout.write(f"{recorded.outcome}")
