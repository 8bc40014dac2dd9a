"""Claims, leases and fencing: the only module that moves a delivery between states.

A claim is one conditional UPDATE that exactly one worker can win: on SQLite the IMMEDIATE
transaction serialises writers; on PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets workers take
disjoint rows without waiting. Each claim stamps a fresh lease token, and every later transition
names that token, so a worker whose lease expired (and whose rows someone else now holds) can
no longer write an outcome.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import F

from bulletin.domain.models import Attempt, AttemptOutcome, Delivery, DeliveryState

log = logging.getLogger(__name__)


def new_token() -> str:
    return uuid.uuid4().hex


def _db_time(value: datetime) -> object:
    return connection.ops.adapt_datetimefield_value(value)


def claim(token: str, limit: int, now: datetime, lease: timedelta) -> list[int]:
    """Lease up to ``limit`` due deliveries to ``token``; returns their ids."""
    table = Delivery._meta.db_table
    skip_locked = " FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    # A CTE, not "id IN (subquery … LIMIT)": PostgreSQL may run such a subquery more than once,
    # and with SKIP LOCKED each run can pick different rows, claiming more than the limit.
    sql = (
        f"WITH due AS (SELECT id AS due_id FROM {table} WHERE state = %s AND due_at <= %s "
        f"ORDER BY due_at LIMIT %s{skip_locked}) "
        f"UPDATE {table} SET state = %s, lease_token = %s, lease_expires_at = %s, updated_at = %s "
        f"FROM due WHERE id = due.due_id AND state = %s RETURNING id"
    )
    pending = DeliveryState.PENDING.value
    params: list[Any] = [
        pending,
        _db_time(now),
        limit,
        DeliveryState.CLAIMED.value,
        token,
        _db_time(now + lease),
        _db_time(now),
        pending,
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = sorted(row[0] for row in cursor.fetchall())
    if ids:
        log.info("deliveries claimed", extra={"delivery_ids": ids, "lease_token": token})
    return ids


def begin_attempt(delivery_id: int, token: str, now: datetime, lease: timedelta) -> int | None:
    """Write the intent before the side effect; returns the attempt number, None if not ours."""
    with transaction.atomic():
        moved = Delivery.objects.filter(
            pk=delivery_id, lease_token=token, state=DeliveryState.CLAIMED
        ).update(
            state=DeliveryState.SENDING,
            attempts=F("attempts") + 1,
            lease_expires_at=now + lease,
            updated_at=now,
        )
        if not moved:
            log.warning("lease lost before sending", extra={"delivery_id": delivery_id})
            return None
        number = Delivery.objects.values_list("attempts", flat=True).get(pk=delivery_id)
        Attempt.objects.create(delivery_id=delivery_id, number=number, started_at=now)
    log.info("delivery sending", extra={"delivery_id": delivery_id, "attempt": number})
    return number


class LeaseLost(Exception):
    """The outcome could not be recorded: another worker now holds the delivery."""


@dataclass(frozen=True)
class Outcome:
    state: DeliveryState
    attempt: AttemptOutcome
    error: str = ""
    retry_at: datetime | None = None


def finish(delivery_id: int, token: str, outcome: Outcome, now: datetime) -> bool:
    """Record the outcome of the attempt in flight, only while the lease is still ours."""
    changes: dict[str, object] = {
        "state": outcome.state,
        "lease_token": None,
        "lease_expires_at": None,
        "last_error": outcome.error,
        "updated_at": now,
    }
    if outcome.state == DeliveryState.SENT:
        changes["sent_at"] = now
    if outcome.retry_at is not None:
        changes["due_at"] = outcome.retry_at
    with transaction.atomic():
        moved = Delivery.objects.filter(
            pk=delivery_id, lease_token=token, state=DeliveryState.SENDING
        ).update(**changes)
        if moved:
            Attempt.objects.filter(delivery_id=delivery_id, outcome="").update(
                outcome=outcome.attempt, error=outcome.error, finished_at=now
            )
    _log_outcome(delivery_id, outcome, bool(moved))
    return bool(moved)


def _log_outcome(delivery_id: int, outcome: Outcome, recorded: bool) -> None:
    extra = {"delivery_id": delivery_id, "state": outcome.state.value, "error": outcome.error}
    if not recorded:
        log.warning("lease lost mid-send; outcome not recorded", extra=extra)
    elif outcome.state == DeliveryState.SENT:
        log.info("delivery sent", extra=extra)
    else:
        log.warning(f"delivery {outcome.state.value}", extra=extra)


def renew(delivery_ids: list[int], token: str, now: datetime, lease: timedelta) -> int:
    """Extend the lease on a batch's claimed rows, so a slow batch keeps what it has not sent."""
    return Delivery.objects.filter(
        pk__in=delivery_ids, lease_token=token, state=DeliveryState.CLAIMED
    ).update(lease_expires_at=now + lease)


def defer(delivery_id: int, token: str, until: datetime, now: datetime) -> bool:
    """Put a claimed delivery back until a rate limit frees up; no attempt is counted."""
    moved = Delivery.objects.filter(
        pk=delivery_id, lease_token=token, state=DeliveryState.CLAIMED
    ).update(
        state=DeliveryState.PENDING,
        lease_token=None,
        lease_expires_at=None,
        due_at=until,
        updated_at=now,
    )
    if moved:
        log.info(
            "delivery deferred by a rate limit",
            extra={"delivery_id": delivery_id, "until": until.isoformat()},
        )
    return bool(moved)


def release(delivery_ids: list[int], token: str, now: datetime) -> int:
    """Give back claimed deliveries that were never attempted (a graceful stop)."""
    released = Delivery.objects.filter(
        pk__in=delivery_ids, lease_token=token, state=DeliveryState.CLAIMED
    ).update(state=DeliveryState.PENDING, lease_token=None, lease_expires_at=None, updated_at=now)
    if released:
        log.info("claimed deliveries released", extra={"delivery_ids": delivery_ids})
    return released


@dataclass(frozen=True)
class Reaped:
    requeued: list[int]
    resent: list[int]
    unknown: list[int]


INTERRUPTED = "worker lost its lease mid-send; the message may or may not have gone out"


def reap(now: datetime, deduplicating: list[str]) -> Reaped:
    """Settle deliveries whose lease expired: their worker died or stalled.

    Claimed but never attempted: simply back to the queue. Expired mid-send: the message may
    have gone out, so it is resent only where the receiver drops duplicates by key; elsewhere
    it becomes ``unknown`` for a person to decide. Never twice beats always once.
    """
    with transaction.atomic():
        expired = list(
            Delivery.objects.filter(lease_expires_at__lt=now)
            .order_by()
            .select_for_update()
            .values_list("pk", "state", "channel")
        )
        never_sent = [pk for pk, state, _ in expired if state == DeliveryState.CLAIMED]
        in_flight = [(pk, ch) for pk, state, ch in expired if state == DeliveryState.SENDING]
        resent = [pk for pk, channel in in_flight if channel in deduplicating]
        unknown = [pk for pk, channel in in_flight if channel not in deduplicating]
        _move(never_sent, now, DeliveryState.PENDING)
        _move(resent, now, DeliveryState.PENDING)
        _move(unknown, now, DeliveryState.UNKNOWN, error=INTERRUPTED)
        Attempt.objects.filter(delivery_id__in=resent + unknown, outcome="").update(
            outcome=AttemptOutcome.INTERRUPTED, finished_at=now
        )
    for ids, event in ((never_sent, "requeued"), (resent, "resent"), (unknown, "unknown")):
        for delivery_id in ids:
            log.warning(f"expired lease: delivery {event}", extra={"delivery_id": delivery_id})
    return Reaped(never_sent, resent, unknown)


def _move(ids: list[int], now: datetime, state: DeliveryState, error: str = "") -> None:
    changes: dict[str, object] = {
        "state": state,
        "lease_token": None,
        "lease_expires_at": None,
        "updated_at": now,
    }
    if error:
        changes["last_error"] = error
    if state == DeliveryState.PENDING:
        changes["due_at"] = now
    Delivery.objects.filter(pk__in=ids).update(**changes)
