"""``bulletin settle``: list ``unknown`` deliveries, or record what a person found out about
them (``bulletin.dispatch.settling`` says what each answer does)."""

from collections.abc import Iterator
from typing import Any

from django.core.management.base import CommandError, CommandParser

from bulletin.channels.email import message_id
from bulletin.dispatch.settling import settle
from bulletin.domain.models import Channel, Delivery, DeliveryState
from bulletin.interfaces.management.base import BulletinCommand


def unknown_deliveries() -> Iterator[str]:
    """One tab-separated line per unknown delivery: what a person needs to decide."""
    rows = (
        Delivery.objects.filter(state=DeliveryState.UNKNOWN)
        .select_related("employee", "place", "occurrence__announcement")
        .order_by("pk")
    )
    for row in rows.iterator(chunk_size=500):
        key = row.idempotency_key
        mark = message_id(key) if row.channel == Channel.EMAIL else key
        recipient = row.employee.email if row.employee else str(row.place)
        title = row.occurrence.announcement.title
        fired = f"{row.occurrence.fire_at:%Y-%m-%dT%H:%MZ}"
        error = " ".join(row.last_error.split())  # one line per delivery, whatever the server said
        yield "\t".join((str(row.pk), row.channel, recipient, mark, fired, title, error))


class Command(BulletinCommand):
    help = (
        "List unknown deliveries (--list), or record what a person found out about them: "
        "--sent (it arrived), --failed (it did not; do not send), --resend (send it again)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="*", type=int, metavar="DELIVERY_ID")
        verdict = parser.add_mutually_exclusive_group(required=True)
        for name, text in (
            ("list", "print each unknown delivery: id, channel, recipient, Message-ID or key"),
            ("sent", "it did arrive: mark it sent"),
            ("failed", "it did not arrive and must not be sent: mark it failed"),
            ("resend", "it did not arrive: queue it to be sent again"),
        ):
            verdict.add_argument(
                f"--{name}", dest="verdict", action="store_const", const=name, help=text
            )
        parser.add_argument("--reason", default="", help="what you found, kept in the audit log")

    def handle(self, *args: Any, ids: list[int], verdict: str, reason: str, **opts: Any) -> None:
        if verdict == "list":
            if ids:
                raise CommandError("--list takes no delivery ids", returncode=2)
            self._list()
            return
        if not ids:
            raise CommandError(f"--{verdict} needs at least one DELIVERY_ID", returncode=2)
        moved = settle(sorted(set(ids)), verdict, reason)
        self.stdout.write(
            f"settled {moved} unknown deliver{'y' if moved == 1 else 'ies'}: {verdict}"
        )

    def _list(self) -> None:
        listed = False
        for line in unknown_deliveries():
            self.stdout.write(line)
            listed = True
        if not listed:
            self.stdout.write("no unknown deliveries")
