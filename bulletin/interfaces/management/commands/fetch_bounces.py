"""``bulletin fetch_bounces``: the returned messages in a Maildir or an IMAP folder, recorded
and then moved out of the way (or deleted); run it from cron, every few minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from bulletin.interfaces.mailboxes import ImapError, ImapFetch, ImapTarget, fetch_maildir
from bulletin.interfaces.management.base import BulletinCommand


class Command(BulletinCommand):
    help = (
        "Record the bounces, complaints and automatic replies waiting in a Maildir (--maildir) "
        "or an IMAP folder (--imap), then move each to the Processed folder, or delete it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--maildir", type=Path, metavar="DIR", help="a Maildir (new/, cur/)")
        where.add_argument(
            "--imap",
            metavar="URL",
            help="imaps://user@host:993/INBOX; the password comes from BULLETIN_IMAP_PASSWORD "
            "or the file BULLETIN_IMAP_PASSWORD_FILE names",
        )
        parser.add_argument(
            "--imap-ca-file", default="", metavar="FILE", help="a private CA's certificate (PEM)"
        )
        parser.add_argument(
            "--processed-folder",
            default="Processed",
            metavar="NAME",
            help="the IMAP folder processed messages move to (made if missing)",
        )
        parser.add_argument(
            "--delete", action="store_true", help="delete processed messages instead of moving"
        )

    def handle(
        self,
        *args: Any,
        maildir: Path | None,
        imap: str | None,
        imap_ca_file: str,
        processed_folder: str,
        delete: bool,
        **options: Any,
    ) -> None:
        try:
            if maildir is not None:
                tally = fetch_maildir(maildir, delete=delete)
            else:
                target = ImapTarget.from_url(imap or "")
                fetch = ImapFetch(target, imap_ca_file, processed_folder, delete)
                tally = fetch.run()
        except (ImapError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(tally.line())
        if tally.left:
            raise CommandError(f"{tally.left} messages could not be recorded", returncode=1)
