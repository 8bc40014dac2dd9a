from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError, CommandParser

from bulletin.domain.models import ApiToken
from bulletin.interfaces.api.auth import SCOPES
from bulletin.interfaces.management.base import BulletinCommand

NAME_LIMIT = ApiToken._meta.get_field("name").max_length or 100


def parse_scopes(value: str) -> list[str]:
    scopes = list(dict.fromkeys(s.strip() for s in value.split(",") if s.strip()))
    if unknown := [scope for scope in scopes if scope not in SCOPES]:
        raise CommandError(
            f"--scopes: unknown scope(s) {', '.join(unknown)}; choose from {', '.join(SCOPES)}"
        )
    if not scopes:
        raise CommandError(f"--scopes: name at least one of {', '.join(SCOPES)}")
    return scopes


class Command(BulletinCommand):
    help = (
        "Issue an API token acting as USER with the given scopes. Prints the token on stdout: "
        "only its hash is stored, so it cannot be shown again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="the username the token acts as")
        parser.add_argument("--name", required=True, help="a label, e.g. 'HRIS sync'")
        parser.add_argument(
            "--scopes", required=True, help=f"comma-separated, from: {', '.join(SCOPES)}"
        )

    def handle(self, *args: Any, user: str, name: str, scopes: str, **options: Any) -> None:
        wanted = parse_scopes(scopes)
        label = name.strip()
        if not label or len(label) > NAME_LIMIT:
            raise CommandError(f"--name must be 1 to {NAME_LIMIT} characters")
        users = get_user_model()._default_manager
        owner = users.filter(**{get_user_model().USERNAME_FIELD: user}).first()
        if owner is None:
            raise CommandError(f"--user: no user '{user}'")
        if not owner.is_active:
            raise CommandError(f"--user: '{user}' is not active")
        token, raw = ApiToken.issue(owner, label, wanted)
        self.stderr.write(
            f"token {token.hint}… '{token.name}' for {user} ({', '.join(wanted)}); "
            "shown once below: store it now"
        )
        self.stdout.write(raw)
