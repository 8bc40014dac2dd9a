"""Settling ``unknown`` deliveries: a person's decision, recorded and audited.

An ``unknown`` delivery was interrupted mid-send: it may or may not have arrived, and Bulletin
never guesses. Once someone has looked (the mail server's log for its Message-ID, the Slack or
Teams channel), ``settle`` records the answer: ``sent`` (it did arrive), ``failed`` (it did not,
and is not to be sent) or ``resend`` (it did not: queue it again, with a fresh retry budget
as any deliberate retry). Only ``unknown`` rows move,
by a conditional UPDATE that names that state, all named ids or none.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from bulletin.dispatch.ledger import orders
from bulletin.dispatch.lifecycle import audit
from bulletin.domain.models import Announcement, Delivery, DeliveryState
from bulletin.domain.records import AuditAction

log = logging.getLogger(__name__)


def _note(verdict: str, reason: str) -> str:
    if verdict != "failed":
        return ""
    return f"settled by hand: did not arrive{f' ({reason})' if reason else ''}"


def _check(ids: list[int], found: dict[int, str]) -> None:
    if missing := [str(pk) for pk in ids if pk not in found]:
        raise ValidationError(f"no delivery {', '.join(missing)}; nothing was changed")
    if settled := [f"{pk} is {found[pk]}" for pk in ids if found[pk] != DeliveryState.UNKNOWN]:
        raise ValidationError(
            f"only an unknown delivery can be settled, and {'; '.join(settled)}; "
            "nothing was changed"
        )


def settle(ids: list[int], verdict: str, reason: str = "") -> int:
    """Move the named unknown deliveries as ``verdict`` says, auditing it per announcement."""
    now = timezone.now()
    with transaction.atomic():
        _check(ids, orders.lock(ids))
        moved = orders.settle(ids, verdict, _note(verdict, reason), now)
        if moved != len(ids):  # the lock makes this impossible; the UPDATE is the last word
            raise ValidationError("the deliveries changed meanwhile; nothing was changed")
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
