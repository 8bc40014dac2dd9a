"""Retention: delete old, settled deliveries and their attempt history; keep the ledger.

What goes: deliveries that are ``sent``, ``failed`` or ``skipped`` and whose last change
(``updated_at``) is older than the cut-off, with their Attempt rows. Nothing can happen to such a
row any more except a person retrying a failed one, which after the retention period is exactly
what pruning means to give up.

What stays, and why:

- **Every Occurrence row.** The occurrence ledger, unique on (announcement, zone, fire_at), is
  what stops a recurring announcement from firing twice for one slot: the planner inserts with
  ``ignore_conflicts``, so a stale planner or a cursor put back re-plans nothing while the row
  exists. The price is one row per firing (per zone), forever; that row is what makes "never
  twice" hold across prunes.
- **Deleting a delivery cannot cause a resend.** Deliveries are created only by fan-out
  (``fanout.fan_out``), which locks the occurrence row, inserts only while it is still
  ``planned`` and marks it ``fanned_out`` in the same transaction; ``fan_out_planned`` looks at
  ``planned`` occurrences only. A pruned delivery's occurrence stays ``fanned_out`` (or
  ``missed``/``cancelled``), so no tick, racing fan-out or retried task ever fans it out again.
  Retry and the reaper move existing rows only; none re-creates a deleted one.
- **``unknown`` deliveries**: each waits for a person to decide whether it arrived
  (``bulletin settle``, or retry). Pruning it would silently drop that question.
- **``pending``, ``claimed``, ``sending``**: live work.
- **A delivery with an inbox item.** InboxItem points at its delivery with ``on_delete=CASCADE``,
  so deleting a sent in-app delivery would delete the employee's inbox item too. In-app
  deliveries that never reached the inbox (failed, skipped) have no item and may go.
- Audit events point at announcements, not deliveries; the delivery ids some carry in their
  detail are history and stay as written. ``Occurrence.delivery_count`` keeps how many were
  fanned out.
- **The counts.** A pruned delivery still counts in the totals HR, ``status`` and
  ``/metrics`` show: the ledger moves its count from ``live`` to ``pruned``
  (``bulletin.dispatch.ledger.counts``). Only the lists of deliveries (the detail page's
  rows, the CSV export, the API's ``/deliveries``) lose it.

Deletion runs in batches, each one short transaction over at most ``batch_size`` rows: memory is
bounded by the batch, and other writers (SQLite has one at a time) wait for a batch, not for the
whole prune.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from bulletin.dispatch.ledger import orders
from bulletin.domain.models import Attempt, Delivery, DeliveryState, InboxItem

log = logging.getLogger(__name__)

# Settled for good. A bounced delivery's Bounce row (bulletin.domain.bounces) outlives it: the
# suppression it caused still needs its reason after the delivery is gone.
PRUNABLE_STATES = (
    DeliveryState.SENT,
    DeliveryState.FAILED,
    DeliveryState.SKIPPED,
    DeliveryState.BOUNCED,
)
BATCH_SIZE = 500
LONGEST = timedelta(days=36525)  # past a century, now - age stops being a real date
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_DURATION = re.compile(r"(-?\d+)([hdw])")


class DurationError(ValueError):
    """A retention age that is not a positive number of hours, days or weeks."""


def parse_age(text: str) -> timedelta:
    """``12h``, ``90d`` or ``2w`` as a timedelta; DurationError says what is wrong."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise DurationError(
            f"{text!r} is not a duration: use a whole number and h, d or w (like 12h, 90d, 2w)"
        )
    amount = int(match[1])
    if amount <= 0:
        raise DurationError(f"{text!r} must be more than zero")
    if amount * _UNITS[match[2]] > LONGEST:
        raise DurationError(f"{text!r} is longer than 100 years")
    return amount * _UNITS[match[2]]


@dataclass(frozen=True)
class Pruned:
    deliveries: int = 0
    attempts: int = 0

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(self.deliveries + other.deliveries, self.attempts + other.attempts)


def prunable(cutoff: datetime) -> QuerySet[Delivery]:
    """Settled deliveries last changed before ``cutoff`` that no inbox item depends on."""
    in_inbox = Exists(InboxItem.objects.filter(delivery=OuterRef("pk")))
    return Delivery.objects.filter(state__in=PRUNABLE_STATES, updated_at__lt=cutoff).filter(
        ~in_inbox
    )


def prune(cutoff: datetime, *, dry_run: bool = False, batch_size: int = BATCH_SIZE) -> Pruned:
    """Delete (or, with ``dry_run``, count) what retention lets go; logs one event."""
    pruned = _count(cutoff) if dry_run else _delete_all(cutoff, batch_size)
    log.info(
        "deliveries prunable (dry run)" if dry_run else "deliveries pruned",
        extra={
            "deliveries": pruned.deliveries,
            "attempts": pruned.attempts,
            "cutoff": cutoff.isoformat(),
        },
    )
    return pruned


def _count(cutoff: datetime) -> Pruned:
    rows = prunable(cutoff)
    return Pruned(rows.count(), Attempt.objects.filter(delivery__in=rows).count())


def _delete_all(cutoff: datetime, batch_size: int) -> Pruned:
    total = Pruned()
    while True:
        batch = _delete_batch(cutoff, batch_size)
        total += batch
        if batch.deliveries < batch_size:
            return total


def _delete_batch(cutoff: datetime, batch_size: int) -> Pruned:
    """One short transaction: lock a batch that still qualifies, delete it with its attempts.

    The lock (PostgreSQL; SQLite's IMMEDIATE transaction already excludes other writers) keeps
    a person's retry from turning a row back to ``pending`` between the choice and the delete.
    """
    with transaction.atomic():
        batch = prunable(cutoff).select_for_update().order_by("pk").values_list("pk", flat=True)
        ids = list(batch[:batch_size])
        if not ids:
            return Pruned()
        deliveries, attempts = orders.prune(ids)
    return Pruned(deliveries, attempts)
