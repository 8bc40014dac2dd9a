"""Rate limits shared by every worker: each key's next free slot lives in the database.

A transport names the keys a message must respect (a Slack conversation, Slack's workspace
budget, a Teams webhook) and the spacing each needs. A send **books** the next free slot on
every key it needs, in one short transaction with the keys' rows locked (SQLite: an
``IMMEDIATE`` transaction; PostgreSQL: the rows locked in key order)::

    slot           = max(now, each key's next slot, each key's 429 hold)
    key.next slot  = slot + key's spacing          (keys with a spacing only)

and the dispatcher waits until its slot, then sends. Booking from the previous slot, not
from the clock, makes every lane and process one queue per key, spaced by its interval: what
the receiver sees is at most one send per interval, whoever books.

Providers count over windows and answer a 429 when one overflows: Slack allows
``chat.postMessage`` "one message per second per channel" with "short bursts" and a
workspace-wide limit beside it, and looks-ups (Tier 3) "50+ per minute" (api.slack.com/docs/
rate-limits); Microsoft states Teams' Graph budget as "15000 requests every 10 seconds" and
4 requests a second per team or channel. A 429 carries ``Retry-After`` (seconds).

The receiver's clock is what counts, and a send lands a little after its slot: its intent is
written, a Slack DM may look its person up first, the interpreter and the network take their
turns. Measured at the loopback Slack, posts land 10-15 ms either side of their spacing, and a
process's first send up to 60 ms late. Slots are therefore spaced 2 % wider than the pace
(``SPACING``): in the 10-second window providers speak of, that leaves 200 ms for a send to
land later than the ones after it, so no 10 seconds at the receiver see more than the pace
allows, plus one. It costs 2 % of the rate.

What it replaced, and why four lanes got through at about twice the pace: the old
``reserve()`` either took a slot (returning ``now``) or, the key being busy, took nothing and
returned when it would free up; the caller then compared that time with a *later* clock
reading and sent if it had passed. A refusal whose wait was shorter than the transaction's
commit (a few milliseconds: every refusal just before the slot) became a send without a
slot. Measured at the loopback Slack with 4 lanes at 25 a second: 27 of 60 posts went out on
such free passes beside the 33 granted, 47 posts in the busiest second. (The clock read
before the lock, the other suspect, was 2-16 ms stale: not the cause.) It also deferred a
busy key's delivery through the queue (a new ``due_at``) rather than waiting, so a drain
found "nothing due" and exited with most of the announcement still held back.

A slot further off than the caller's ``horizon`` (a 429 hold, a very slow pace) is not
booked: the caller puts the delivery back in the queue until then, and no booked-but-unused
slot holds the key back meanwhile. A provider's 429 Retry-After is a **hold** on the key
(:func:`hold`), kept in its own row (``key + HELD``) so that a sender already waiting for a
slot it booked earlier can tell a hold from other senders' bookings (:func:`held_until`) and
wait it out too. A key with no spacing (a Slack method's own budget) is only ever held.

All times are this host's clock, as leases are: hosts sharing a database keep their clocks in
step (NTP), or one host's slots come early or late by the skew.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Case, Max, Value, When
from django.utils import timezone

from bulletin.domain.models import ChannelPace

log = logging.getLogger(__name__)

# Slots are this much wider than a pace's interval: room for a send to land late (see above).
SPACING = 1.02
# A key's 429 hold is the row named key + HELD: apart from its slots, so a hold is never
# mistaken for other senders' bookings (and never taken for a slot to book after).
HELD = " #held"

Paces = list[tuple[str, float]]


@dataclass(frozen=True)
class Slot:
    """When a send may go: ``at``, ``wait`` seconds after it was booked. ``booked`` is False
    when it was further off than the horizon: nothing was taken, the caller defers."""

    at: datetime
    wait: float
    booked: bool


def book(paces: Paces, horizon: timedelta) -> Slot:
    """Book the next free slot on every key of ``paces``, unless it is more than ``horizon``
    away; one transaction, the clock read once the keys are locked."""
    spaced = sorted((key, interval) for key, interval in paces if interval > 0)
    names = sorted({key for key, _ in spaced} | {key + HELD for key, _ in paces})
    with transaction.atomic():
        nexts = _locked(names, [key for key, _ in spaced])
        now = timezone.now()  # with the keys locked: no one can book between this and ours
        at = max([now, *nexts.values()])
        if at - now > horizon:
            return Slot(at, (at - now).total_seconds(), booked=False)
        after = {key: at + timedelta(seconds=interval * SPACING) for key, interval in spaced}
        if after:
            moves = [When(key=key, then=Value(slot)) for key, slot in after.items()]
            ChannelPace.objects.filter(key__in=after).update(next_slot_at=Case(*moves))
    return Slot(at, (at - now).total_seconds(), booked=True)


def _locked(names: list[str], spaced: list[str]) -> dict[str, datetime]:
    """The rows of ``names`` that exist, locked in key order (PostgreSQL; SQLite's IMMEDIATE
    transaction holds the whole database). A spaced key seen for the first time is created
    free, in key order too, so two first bookings queue on one key instead of deadlocking."""
    rows = ChannelPace.objects.select_for_update().filter(key__in=names).order_by("key")
    found = dict(rows.values_list("key", "next_slot_at"))
    if missing := [key for key in spaced if key not in found]:
        now = timezone.now()
        created = [ChannelPace(key=key, next_slot_at=now) for key in missing]
        ChannelPace.objects.bulk_create(created, ignore_conflicts=True)
        found = dict(rows.values_list("key", "next_slot_at"))
    return found


def held_until(paces: Paces, now: datetime) -> datetime | None:
    """The end of the latest 429 hold on any of the keys, if it is still running."""
    holds = ChannelPace.objects.filter(key__in=[key + HELD for key, _ in paces])
    latest: datetime | None = holds.aggregate(latest=Max("next_slot_at"))["latest"]
    return latest if latest is not None and latest > now else None


def hold(key: str, until: datetime) -> None:
    """Nobody sends on ``key`` before ``until`` (a provider said so with Retry-After)."""
    name = key + HELD
    with transaction.atomic():
        ChannelPace.objects.bulk_create(
            [ChannelPace(key=name, next_slot_at=until)], ignore_conflicts=True
        )
        ChannelPace.objects.filter(key=name, next_slot_at__lt=until).update(next_slot_at=until)
    log.warning("rate limited: holding back", extra={"pace_key": key, "until": until.isoformat()})
