"""Claims, leases and fencing: with :mod:`bulletin.dispatch.ledger` (the same writes for
channels that send one delivery per connection at a time), the only module that moves a
delivery between states.

A claim is one conditional UPDATE that exactly one worker can win: on SQLite the IMMEDIATE
transaction serialises writers; on PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets workers take
disjoint rows without waiting. Each claim stamps a fresh lease token, and every later transition
names that token, so a worker whose lease expired (and whose rows someone else now holds) can
no longer write an outcome.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from django.db import connection, transaction

from bulletin.channels.base import Recipient
from bulletin.dispatch import statements
from bulletin.domain.models import (
    Attempt,
    AttemptOutcome,
    Delivery,
    DeliveryState,
    Employee,
    Tallied,
    Tally,
)

log = logging.getLogger(__name__)


def new_token() -> str:
    return uuid.uuid4().hex


def _db_time(value: datetime) -> Any:
    """A timestamp as raw SQL hands it to the database.

    On SQLite, Django's own text form of the UTC time (what ``adapt_datetimefield_value``
    returns) built directly: dispatch converts a few per email, and that method's settings
    lookups cost more than the conversion itself.
    """
    if connection.vendor == "sqlite":
        return str(value.astimezone(UTC).replace(tzinfo=None))
    return connection.ops.adapt_datetimefield_value(value)


class Claimed(NamedTuple):
    """What dispatch needs of a claimed delivery, straight from the claim's RETURNING."""

    id: int
    channel: str
    occurrence_id: int
    employee_id: int | None
    place_id: int | None
    # Non-zero when the claim itself began this attempt (see claim_rows): its place in the
    # delivery's current retry budget, which is what the retry policy counts.
    attempt: int
    recipient: Recipient | None = None  # the person, if it goes to one (or through a place)


def claim(token: str, limit: int, now: datetime, lease: timedelta) -> list[int]:
    """Lease up to ``limit`` due deliveries to ``token``; returns their ids."""
    return [row.id for row in claim_rows(token, limit, now, lease)]


def claim_rows(
    token: str, limit: int, now: datetime, lease: timedelta, starting: Sequence[str] = ()
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries to ``token``, oldest due first.

    Rows of the ``starting`` channels are claimed straight into ``sending``, their attempt
    counted: for a channel where a resend is harmless and nothing can hold a row back, the
    claim is the intent, and the separate write of it would only cost a statement per batch.
    """
    table = Delivery._meta.db_table
    starts = f"channel IN ({', '.join(['%s'] * len(starting))})" if starting else "FALSE"
    postgresql = connection.vendor == "postgresql"
    skip_locked = " FOR UPDATE SKIP LOCKED" if postgresql else ""
    # A CTE, not "id IN (subquery … LIMIT)": PostgreSQL may run such a subquery more than once,
    # and with SKIP LOCKED each run can pick different rows, claiming more than the limit.
    sql = (
        f"WITH due AS (SELECT id AS due_id FROM {table} WHERE state = %s AND due_at <= %s "
        f"ORDER BY due_at LIMIT %s{skip_locked}) "
        f"UPDATE {table} SET state = CASE WHEN {starts} THEN %s ELSE %s END, "
        f"attempts = attempts + CASE WHEN {starts} THEN 1 ELSE 0 END, "
        f"lease_token = %s, lease_expires_at = %s, updated_at = %s "
        f"FROM due WHERE id = due.due_id AND state = %s "
        f"RETURNING id, channel, occurrence_id, employee_id, place_id, "
        f"CASE WHEN state = %s THEN attempts - budget_start ELSE 0 END AS began"
    )
    if postgresql:  # the people come back with the claim: one round trip, not two
        sql = f"WITH claimed AS ({sql}) {_WITH_PEOPLE} claimed c {_PEOPLE_JOIN}"
    pending, sending = DeliveryState.PENDING.value, DeliveryState.SENDING.value
    params: list[Any] = [
        *(pending, _db_time(now), limit),
        *(*starting, sending, DeliveryState.CLAIMED.value, *starting),
        *(token, _db_time(now + lease), _db_time(now), pending, sending),
    ]
    with statements.cursor() as cursor:  # one statement: atomic by itself
        cursor.execute(sql, params)
        found = cursor.fetchall()
    rows = sorted(map(_with_person, found)) if postgresql else _with_people(found)
    if rows:
        ids = [row.id for row in rows]
        log.info("deliveries claimed", extra={"delivery_ids": ids, "lease_token": token})
    return rows


def _one_of(column: str, ids: Sequence[int]) -> tuple[str, list[Any]]:
    """``column`` is one of ``ids``, as SQL and its parameters.

    PostgreSQL gets one array parameter: a hundred placeholders cost the driver more to bind
    than the statement costs the server, and the statement's text stays the same for any count.
    """
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(ids)]
    return f"{column} IN ({', '.join(['%s'] * len(ids))})", list(ids)


# A person as the claim brings them back: Recipient's fields, in its order. The Slack
# identities Slack's look-ups found come too, so a remembered DM costs no query and no look-up.
_PERSON = (
    "email, name, timezone, slack_user_id, slack_found_id, slack_found_for, slack_dm_channel, "
    "slack_dm_user"
)
_WITH_PEOPLE = (
    "SELECT c.id, c.channel, c.occurrence_id, c.employee_id, c.place_id, c.began, "
    + ", ".join(f"e.{column}" for column in _PERSON.split(", "))
    + " FROM"
)
_PEOPLE_JOIN = f"LEFT JOIN {Employee._meta.db_table} e ON e.id = c.employee_id"


def _claimed(row: Sequence[Any], person: Recipient | None) -> Claimed:
    """A claimed row from the claim's six columns, with its person."""
    return Claimed(row[0], row[1], row[2], row[3], row[4], row[5], person)


def _with_person(row: Sequence[Any]) -> Claimed:
    """A row of the PostgreSQL claim: six columns, then its person's (NULL for a place)."""
    return _claimed(row, Recipient(*row[6:]) if row[6] is not None else None)


def _with_people(found: list[Any]) -> list[Claimed]:
    """SQLite cannot join a RETURNING clause: the batch's people are a second query."""
    people = _people(sorted({row[3] for row in found if row[3]}))
    return sorted(_claimed(row, people.get(row[3])) for row in found)


def _people(ids: list[int]) -> dict[int, Recipient]:
    if not ids:
        return {}
    among, params = _one_of("id", ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, {_PERSON} FROM {Employee._meta.db_table} WHERE {among}",
            params,
        )
        return {pk: Recipient(*person) for pk, *person in cursor.fetchall()}


def _update_returning(
    ids: list[int], token: str, state: DeliveryState, changes: str, params: list[Any]
) -> tuple[str, list[Any]]:
    """``UPDATE … RETURNING id, tries, attempts`` for the rows of ``ids`` this lease holds in
    ``state``: ``tries`` is the try's place in the current retry budget (what the policy
    counts, see Delivery.budget_start), ``attempts`` the attempt's number in the history.

    One statement for a whole batch: the lease token in the WHERE clause is the fence.
    """
    table = Delivery._meta.db_table
    among, values = _one_of("id", ids)
    sql = (
        f"UPDATE {table} SET {changes} WHERE lease_token = %s AND state = %s "
        # ``attempts`` too, by name: the outcome's history row (see _record) is numbered by it.
        f"AND {among} RETURNING id, attempts - budget_start AS tries, attempts"
    )
    return sql, [*params, token, state.value, *values]


def _move_returning(
    ids: list[int], token: str, state: DeliveryState, changes: str, params: list[Any]
) -> list[tuple[int, int]]:
    if not ids:
        return []
    with statements.cursor() as cursor:
        cursor.execute(*_update_returning(ids, token, state, changes, params))
        return [(row[0], row[1]) for row in cursor.fetchall()]


def begin_attempts(
    delivery_ids: list[int], token: str, now: datetime, lease: timedelta
) -> dict[int, int]:
    """Write the intent before the side effect, for every row still ours: id → the attempt's
    place in its retry budget (the history row is numbered by ``attempts`` itself).

    The intent is the row itself (``sending``, its attempt counted, ``updated_at`` the start);
    the attempt's history row is written with its outcome, or by the reaper if none comes.
    """
    moved = _move_returning(
        delivery_ids,
        token,
        DeliveryState.CLAIMED,
        "state = %s, attempts = attempts + 1, lease_expires_at = %s, updated_at = %s",
        [DeliveryState.SENDING.value, _db_time(now + lease), _db_time(now)],
    )
    numbers = dict(moved)
    lost = [pk for pk in delivery_ids if pk not in numbers]
    if lost:
        Tally.add(Tallied.INTENT_AFTER_LOST_LEASE, len(lost))
    log_intent(lost, sorted(numbers))
    return numbers


def log_intent(lost: list[int], sending: list[int]) -> None:
    if lost:
        log.warning("lease lost before sending", extra={"delivery_ids": lost})
    if sending:
        log.info("deliveries sending", extra={"delivery_ids": sending})


def begin_attempt(delivery_id: int, token: str, now: datetime, lease: timedelta) -> int | None:
    """One delivery's intent; returns the attempt number, None if the lease is no longer ours."""
    return begin_attempts([delivery_id], token, now, lease).get(delivery_id)


class LeaseLost(Exception):
    """The outcome could not be recorded: another worker now holds the delivery."""


@dataclass(frozen=True)
class Outcome:
    state: DeliveryState
    attempt: AttemptOutcome
    error: str = ""
    retry_at: datetime | None = None


def finish_many(
    outcomes: dict[int, Outcome], token: str, now: datetime, started: datetime
) -> set[int]:
    """Record each attempt's outcome while the lease is still ours; returns the ids recorded.

    Rows sharing an outcome (a batch that all went out) are recorded by one statement, and
    their history rows (begun at ``started``) by one insert.
    """
    by_outcome = group_outcomes(outcomes.items())
    recorded: set[int] = set()
    alone = len(by_outcome) == 1 and connection.vendor == "postgresql"
    # Alone: one statement, atomic by itself. Inside a caller's transaction: part of it.
    with nullcontext() if alone or connection.in_atomic_block else transaction.atomic():
        for outcome, ids in by_outcome.items():
            recorded |= _record(sorted(ids), token, outcome, now, started)
        Tally.add(Tallied.OUTCOME_AFTER_LOST_LEASE, len(outcomes) - len(recorded))
    log_outcomes(by_outcome, recorded)
    return recorded


def group_outcomes(pairs: Iterable[tuple[int, Outcome]]) -> dict[Outcome, list[int]]:
    """Delivery ids by the outcome they share: one statement, and one log event, each."""
    grouped: dict[Outcome, list[int]] = {}
    for delivery_id, outcome in pairs:
        grouped.setdefault(outcome, []).append(delivery_id)
    return grouped


def finish(
    delivery_id: int, token: str, outcome: Outcome, now: datetime, started: datetime
) -> bool:
    """Record the outcome of one attempt in flight, only while the lease is still ours."""
    return delivery_id in finish_many({delivery_id: outcome}, token, now, started)


def _record(
    ids: list[int], token: str, outcome: Outcome, now: datetime, started: datetime
) -> set[int]:
    at = _db_time(now)
    changes = "state = %s, lease_token = NULL, lease_expires_at = NULL, last_error = %s"
    changes += ", updated_at = %s"
    params: list[Any] = [outcome.state.value, outcome.error, at]
    if outcome.state == DeliveryState.SENT:
        changes += ", sent_at = %s"
        params.append(at)
    if outcome.retry_at is not None:
        changes += ", due_at = %s"
        params.append(_db_time(outcome.retry_at))
    update = _update_returning(ids, token, DeliveryState.SENDING, changes, params)
    attempts = Attempt._meta.db_table
    history = (
        f"INSERT INTO {attempts} (delivery_id, number, started_at, finished_at, outcome, error) "
        f"SELECT id, attempts, %s, %s, %s, %s FROM "
    )
    values = [_db_time(started), at, outcome.attempt.value, outcome.error]
    with statements.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The outcome and its history row in one statement: they cannot part.
            cursor.execute(
                f"WITH moved AS ({update[0]}) {history} moved RETURNING delivery_id",
                [*update[1], *values],
            )
            return {row[0] for row in cursor.fetchall()}
        cursor.execute(*update)
        moved = [row[0] for row in cursor.fetchall()]
        if moved:
            among, ids_given = _one_of("id", moved)
            table = Delivery._meta.db_table
            cursor.execute(f"{history} {table} WHERE {among}", [*values, *ids_given])
    return set(moved)


def log_outcomes(grouped: dict[Outcome, list[int]], recorded: set[int]) -> None:
    for outcome, ids in grouped.items():
        _log_outcome(ids, outcome, recorded)


def _log_outcome(ids: list[int], outcome: Outcome, recorded: set[int]) -> None:
    lost = [pk for pk in ids if pk not in recorded]
    if lost:
        extra = {"delivery_ids": lost, "state": outcome.state.value, "error": outcome.error}
        log.warning("lease lost mid-send; outcome not recorded", extra=extra)
    done = [pk for pk in ids if pk in recorded]
    if not done:
        return
    extra = {"delivery_ids": done, "state": outcome.state.value, "error": outcome.error}
    if outcome.state == DeliveryState.SENT:
        log.info("deliveries sent", extra=extra)
    else:
        log.warning(f"deliveries {outcome.state.value}", extra=extra)


def renew(delivery_ids: list[int], token: str, now: datetime, lease: timedelta) -> int:
    """Extend the lease on a batch's rows, so a slow batch keeps what it has not finished.

    Called between sends, never during one: a send that hangs still lets its lease run out.
    """
    return Delivery.objects.filter(
        pk__in=delivery_ids,
        lease_token=token,
        state__in=[DeliveryState.CLAIMED, DeliveryState.SENDING],
    ).update(lease_expires_at=now + lease)


def withdraw(delivery_ids: list[int], token: str, now: datetime) -> int:
    """Undo the intent for rows marked sending that this worker knows it never sent (it was
    asked to stop mid-batch): back to the queue, the attempt not counted."""
    moved = _move_returning(
        delivery_ids,
        token,
        DeliveryState.SENDING,
        "state = %s, attempts = attempts - 1, lease_token = NULL, lease_expires_at = NULL, "
        "updated_at = %s",
        [DeliveryState.PENDING.value, _db_time(now)],
    )
    if moved:
        log.info("unsent deliveries withdrawn", extra={"delivery_ids": [pk for pk, _ in moved]})
    return len(moved)


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
    moved = _move_returning(
        delivery_ids,
        token,
        DeliveryState.CLAIMED,
        "state = %s, lease_token = NULL, lease_expires_at = NULL, updated_at = %s",
        [DeliveryState.PENDING.value, _db_time(now)],
    )
    if moved:
        log.info("claimed deliveries released", extra={"delivery_ids": [pk for pk, _ in moved]})
    return len(moved)


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
            .values_list("pk", "state", "channel", "attempts", "updated_at")
        )
        never_sent = [row[0] for row in expired if row[1] == DeliveryState.CLAIMED]
        in_flight = [row for row in expired if row[1] == DeliveryState.SENDING]
        resent = [row[0] for row in in_flight if row[2] in deduplicating]
        unknown = [row[0] for row in in_flight if row[2] not in deduplicating]
        _move(never_sent, now, DeliveryState.PENDING)
        _move(resent, now, DeliveryState.PENDING)
        _move(unknown, now, DeliveryState.UNKNOWN, error=INTERRUPTED)
        # Requeued claims leave no Attempt row; the interrupted sends below do.
        Tally.add(Tallied.CLAIM_REQUEUED, len(never_sent))
        # The attempts that never reported: begun when their intent was written (updated_at).
        Attempt.objects.bulk_create(
            Attempt(
                delivery_id=pk,
                number=number,
                started_at=begun,
                finished_at=now,
                outcome=AttemptOutcome.INTERRUPTED,
            )
            for pk, _, _, number, begun in in_flight
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
