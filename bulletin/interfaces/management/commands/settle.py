"""``bulletin settle``: a person's decision about ``unknown`` deliveries, recorded and audited.

An ``unknown`` delivery was interrupted mid-send: it may or may not have arrived, and Bulletin
never guesses. Once someone has looked (the mail server's log for its Message-ID, the Slack or
Teams channel), this records the answer: ``--sent`` (it did arrive), ``--failed`` (it did not,
and is not to be sent), or ``--resend`` (it did not: queue it again). Only ``unknown`` rows move,
by a conditional UPDATE that names that state, all named ids or none.
"""

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from bulletin.channels.email import message_id
from bulletin.dispatch.lifecycle import audit
from bulletin.domain.models import Announcement, Attempt, Channel, Delivery, DeliveryState
from bulletin.domain.records import AuditAction
from bulletin.interfaces.management.base import BulletinCommand

log = logging.getLogger(__name__)

# Not (yet) one of AuditAction's choices; the HR activity log shows the stored value as is.


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


def _changes(verdict: str, reason: str, now: datetime) -> dict[str, Any]:
    if verdict == "resend":
        return {"state": DeliveryState.PENDING, "due_at": now, "last_error": ""}
    if verdict == "failed":
        note = f"settled by hand: did not arrive{f' ({reason})' if reason else ''}"
        return {"state": DeliveryState.FAILED, "last_error": note}
    # When the interrupted attempt began is the best estimate of when it was handed over.
    began = Attempt.objects.filter(delivery=OuterRef("pk")).order_by("-number")
    return {
        "state": DeliveryState.SENT,
        "sent_at": Coalesce(Subquery(began.values("started_at")[:1]), now),
        "last_error": "",
    }


def _check(ids: list[int], found: dict[int, str]) -> None:
    if missing := [str(pk) for pk in ids if pk not in found]:
        raise CommandError(f"no delivery {', '.join(missing)}; nothing was changed")
    if settled := [f"{pk} is {found[pk]}" for pk in ids if found[pk] != DeliveryState.UNKNOWN]:
        raise CommandError(
            f"only an unknown delivery can be settled, and {'; '.join(settled)}; "
            "nothing was changed"
        )


def settle(ids: list[int], verdict: str, reason: str = "") -> int:
    """Move the named unknown deliveries as ``verdict`` says, auditing it per announcement."""
    now = timezone.now()
    with transaction.atomic():
        locked = Delivery.objects.select_for_update().filter(pk__in=ids)
        found = dict(locked.values_list("pk", "state"))
        _check(ids, found)
        unknown = Delivery.objects.filter(pk__in=ids, state=DeliveryState.UNKNOWN)
        moved = unknown.update(updated_at=now, **_changes(verdict, reason, now))
        if moved != len(ids):  # the lock makes this impossible; the UPDATE is the last word
            raise CommandError("the deliveries changed meanwhile; nothing was changed")
        _audit(ids, verdict, reason)
    log.info("unknown deliveries settled", extra={"delivery_ids": ids, "verdict": verdict})
    return moved


def _audit(ids: list[int], verdict: str, reason: str) -> None:
    """One audit event per announcement concerned, naming its deliveries."""
    announcements = Announcement.objects.filter(occurrences__deliveries__in=ids).distinct()
    for announcement in announcements:
        mine = Delivery.objects.filter(pk__in=ids, occurrence__announcement=announcement)
        detail: dict[str, Any] = {
            "delivery_ids": sorted(mine.values_list("pk", flat=True)),
            "via": "command line",
            **({"reason": reason} if reason else {}),
        }
        if verdict == "resend":  # the same record as HR's "retry unknown", so it reads alike
            count = len(detail["delivery_ids"])
            detail |= {"deliveries": count, "states": ["unknown"]}
            audit(None, AuditAction.RETRIED, announcement, **detail)
        else:
            audit(None, AuditAction.SETTLED, announcement, settled_as=verdict, **detail)


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
