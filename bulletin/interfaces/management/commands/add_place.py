import base64
import secrets
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from bulletin.domain.models import PLACE_CHANNELS, Channel, Place
from bulletin.interfaces.management.base import BulletinCommand


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: "whsec_" and base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class Command(BulletinCommand):
    help = (
        "Add (or update) a place announcements can post to: a Slack channel, a Teams channel's "
        "workflow webhook, or a webhook endpoint."
    )
    option_names = {"name": "--name", "target": "--target", "channel": "--channel"}

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--channel", required=True, choices=[c.value for c in PLACE_CHANNELS])
        parser.add_argument("--name", required=True, help="how announcements name it")
        parser.add_argument("--target", required=True, help="Slack channel id, or the URL")
        parser.add_argument("--per-person", action="store_true", help="webhook: one call each")
        parser.add_argument("--secret-file", type=Path, help="webhook: the signing secret")
        parser.add_argument(
            "--rotate-secret", action="store_true", help="webhook: new secret, keep the old"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        place = Place.objects.filter(channel=opts["channel"], name=opts["name"]).first()
        place = place or Place(channel=opts["channel"], name=opts["name"])
        place.target, place.per_person = opts["target"], opts["per_person"]
        created_secret = self._secret(place, opts)
        place.full_clean()
        place.save()
        self.stdout.write(f"{place} (id {place.pk})")
        if created_secret:
            self.stdout.write(f"signing secret (shown once): {created_secret}")

    def _secret(self, place: Place, opts: dict[str, Any]) -> str:
        if place.channel != Channel.WEBHOOK:
            return ""
        if opts["secret_file"]:
            try:
                value = opts["secret_file"].read_text().strip()
            except OSError as exc:
                raise CommandError(f"--secret-file: {exc.strerror}") from None
        elif opts["rotate_secret"] or not place.secret:
            value = new_webhook_secret()
        else:
            return ""
        if place.secret and place.secret != value:
            place.previous_secret = place.secret  # both sign until receivers have switched
        place.secret = value
        return "" if opts["secret_file"] else value
