"""A worker's moves, each under its lease: claim, intent, outcome, renew, defer, release,
withdraw; and the reaper's, for leases that expired.

A claim is one conditional UPDATE that exactly one worker can win: on SQLite the IMMEDIATE
transaction serialises writers; on PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets workers take
disjoint rows without waiting. Each claim stamps a fresh lease token, and every later move
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

from bulletin.channels.base import Recipient
from bulletin.dispatch.ledger import counts, execute, sql
from bulletin.dispatch.ledger.cursors import cursor
from bulletin.dispatch.ledger.dialect import current
from bulletin.domain.models import AttemptOutcome, DeliveryState, Tallied, Tally

log = logging.getLogger(__name__)


def new_token() -> str:
    return uuid.uuid4().hex


class Claimed(NamedTuple):
    """What dispatch needs of a claimed delivery, straight from the claim's RETURNING."""

    id: int
    channel: str
    occurrence_id: int
    employee_id: int | None
    place_id: int | None
    # Non-zero when the claim itself began this attempt: its place in the delivery's
    # current retry budget, which is what the retry policy counts.
    attempt: int
    recipient: Recipient | None = None  # the person, if it goes to one (or through a place)
    language: str = ""  # the language of its text, as fan-out chose it ("": the default)


# The PostgreSQL claim brings the batch's people back with it: one round trip, not two.
# Each person by its primary key (LATERAL … LIMIT 1 is never flattened into a join): planned as
# a join, the hundred moved rows met a hash of the whole employee table whenever its statistics
# were stale: at 25,000 employees a claim took 9.3 ms, 5.4 of them hashing everyone; now 1.3 ms.
_WITH_PEOPLE = (
    "SELECT m.*, e.* FROM moved m LEFT JOIN LATERAL "
    f"(SELECT {sql.PERSON} FROM bulletin_employee WHERE id = m.employee_id LIMIT 1) e ON true"
)


def claim(token: str, limit: int, now: datetime, lease: timedelta) -> list[int]:
    """Lease up to ``limit`` due deliveries to ``token``; returns their ids."""
    return [row.id for row in claim_rows(token, limit, now, lease)]


def claim_rows(
    token: str, limit: int, now: datetime, lease: timedelta, starting: Sequence[str] = ()
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries to ``token``, oldest due first; rows of the
    ``starting`` channels go straight to ``sending`` (see ``sql.CLAIM``)."""
    dialect = current()
    params = {
        "now": dialect.time(now),
        "limit": limit,
        "token": token,
        "expires": dialect.time(now + lease),
        "starting": dialect.ids(starting),
    }
    before = f"due AS ({sql.CLAIM_DUE}), "
    found = execute.move(sql.CLAIM, params, was="pending", before=before, after=_WITH_PEOPLE)
    rows = sorted(map(_with_person, found)) if dialect.postgresql else _with_people(found)
    if rows:
        ids = [row.id for row in rows]
        log.info("deliveries claimed", extra={"delivery_ids": ids, "lease_token": token})
    return rows


def _claimed(row: Sequence[Any], person: Recipient | None) -> Claimed:
    """A claimed row: MOVED's three columns, then id, employee, place, began, language."""
    occurrence, channel, _, pk, employee, place, began, language = row[:8]
    return Claimed(pk, channel, occurrence, employee, place, began, person, language or "")


def _with_person(row: Sequence[Any]) -> Claimed:
    """A row of the PostgreSQL claim: eight columns, then its person's (NULL for a place)."""
    return _claimed(row, Recipient(*row[8:]) if row[8] is not None else None)


def _with_people(found: list[Any]) -> list[Claimed]:
    """SQLite cannot join a RETURNING clause: the batch's people are a second query."""
    people = _people(sorted({row[4] for row in found if row[4]}))
    return sorted(_claimed(row, people.get(row[4])) for row in found)


def _people(ids: list[int]) -> dict[int, Recipient]:
    if not ids:
        return {}
    rows = execute.fetch(sql.PEOPLE, {"ids": current().ids(ids)})
    return {pk: Recipient(*person) for pk, *person in rows}


def begin_attempts(
    delivery_ids: list[int], token: str, now: datetime, lease: timedelta
) -> dict[int, int]:
    """Write the intent before the side effect, for every row still ours: id → the attempt's
    place in its retry budget (the history row is numbered by ``attempts`` itself, and
    written with its outcome, or by the reaper if none comes)."""
    if not delivery_ids:
        return {}
    dialect = current()
    params = {
        "ids": dialect.ids(delivery_ids),
        "token": token,
        "expires": dialect.time(now + lease),
        "now": dialect.time(now),
    }
    numbers = {row[3]: row[4] for row in execute.move(sql.INTENT, params, was="claimed")}
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


def outcome_params(outcome: Outcome, now: datetime, started: datetime) -> dict[str, Any]:
    """The parameters of ``sql.OUTCOME``, its history row and its timing (``sql.TIMED``),
    but the ids and token."""
    dialect = current()
    at = dialect.time(now)
    seconds = max((now - started).total_seconds(), 0.0)
    return {
        "seconds": seconds,
        "bucket": counts.bucket(seconds),
        "state": outcome.state.value,
        "error": outcome.error,
        "now": at,
        "sent_at": at if outcome.state == DeliveryState.SENT else None,
        "retry_at": dialect.time(outcome.retry_at) if outcome.retry_at else None,
        "started": dialect.time(started),
        "outcome": outcome.attempt.value,
    }


def finish_many(
    outcomes: dict[int, Outcome], token: str, now: datetime, started: datetime
) -> set[int]:
    """Record each attempt's outcome while the lease is still ours; returns the ids recorded.

    Rows sharing an outcome (a batch that all went out) are recorded by one statement with
    their history rows (begun at ``started``).
    """
    by_outcome = group_outcomes(outcomes.items())
    recorded: set[int] = set()
    # Alone on PostgreSQL: one statement, atomic by itself (a transaction would cost two
    # more round trips a batch). Otherwise one transaction, or part of the caller's.
    alone = len(by_outcome) == 1 and current().postgresql
    with nullcontext() if alone else execute.together():
        for outcome, ids in by_outcome.items():
            recorded |= _record(sorted(ids), token, outcome_params(outcome, now, started))
        Tally.add(Tallied.OUTCOME_AFTER_LOST_LEASE, len(outcomes) - len(recorded))
    log_outcomes(by_outcome, recorded)
    return recorded


def _record(ids: list[int], token: str, params: dict[str, Any]) -> set[int]:
    dialect = current()
    params |= {"ids": dialect.ids(ids), "token": token}
    if dialect.postgresql:  # the outcome, its history and its counts: one statement
        after = f"{sql.HISTORY_OF_MOVED} RETURNING delivery_id"
        also = f", {sql.TIMED}"
        found = execute.move(sql.OUTCOME, params, was="sending", also=also, after=after)
        return {row[0] for row in found}
    moved = execute.move(sql.OUTCOME, params, was="sending")
    if moved:
        execute.run(sql.HISTORY_OF_IDS, params | {"ids": dialect.ids([row[3] for row in moved])})
        timed = counts.Changes()
        for row in moved:
            timed.attempted(row[1], params["outcome"], params["seconds"])
        counts.write(timed)
    return {row[3] for row in moved}


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
    if not delivery_ids:
        return 0
    dialect = current()
    params = {
        "ids": dialect.ids(delivery_ids),
        "token": token,
        "expires": dialect.time(now + lease),
    }
    return execute.run(sql.RENEW, params)


def _by_token(
    template: str, was: str, delivery_ids: list[int], token: str, **times: datetime
) -> list[int]:
    if not delivery_ids:
        return []
    dialect = current()
    params: dict[str, Any] = {"ids": dialect.ids(delivery_ids), "token": token}
    params |= {name: dialect.time(value) for name, value in times.items()}
    return [row[3] for row in execute.move(template, params, was=was)]


def withdraw(delivery_ids: list[int], token: str, now: datetime) -> int:
    """Undo the intent for rows marked sending that this worker knows it never sent (it was
    asked to stop mid-batch): back to the queue, the attempt not counted."""
    moved = _by_token(sql.WITHDRAW, "sending", delivery_ids, token, now=now)
    if moved:
        log.info("unsent deliveries withdrawn", extra={"delivery_ids": moved})
    return len(moved)


def defer(delivery_id: int, token: str, until: datetime, now: datetime) -> bool:
    """Put a claimed delivery back until a rate limit frees up; no attempt is counted."""
    moved = _by_token(sql.DEFER, "claimed", [delivery_id], token, now=now, until=until)
    if moved:
        log.info(
            "delivery deferred by a rate limit",
            extra={"delivery_id": delivery_id, "until": until.isoformat()},
        )
    return bool(moved)


def release(delivery_ids: list[int], token: str, now: datetime) -> int:
    """Give back claimed deliveries that were never attempted (a graceful stop)."""
    moved = _by_token(sql.RELEASE, "claimed", delivery_ids, token, now=now)
    if moved:
        log.info("claimed deliveries released", extra={"delivery_ids": moved})
    return len(moved)


def _aware(value: datetime | str) -> datetime:
    """A timestamp as a raw SQLite read returns it (UTC, as text or a naive datetime)."""
    found = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return found if found.tzinfo else found.replace(tzinfo=UTC)


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
    dialect = current()
    with execute.together():
        # Locked (PostgreSQL) so a late outcome cannot slip in between the read and the moves.
        expired = execute.fetch(sql.EXPIRED, {"now": dialect.time(now)})
        never_sent = [row[0] for row in expired if row[1] == DeliveryState.CLAIMED]
        in_flight = [row for row in expired if row[1] == DeliveryState.SENDING]
        resent = [row[0] for row in in_flight if row[2] in deduplicating]
        unknown = [row[0] for row in in_flight if row[2] not in deduplicating]
        _move(sql.REQUEUE, never_sent, "claimed", now)
        _move(sql.REQUEUE, resent, "sending", now)
        _move(sql.IN_DOUBT, unknown, "sending", now, error=INTERRUPTED)
        # Requeued claims leave no Attempt row; the interrupted sends do.
        Tally.add(Tallied.CLAIM_REQUEUED, len(never_sent))
        _interrupted(in_flight, now)
    for ids, event in ((never_sent, "requeued"), (resent, "resent"), (unknown, "unknown")):
        for delivery_id in ids:
            log.warning(f"expired lease: delivery {event}", extra={"delivery_id": delivery_id})
    return Reaped(never_sent, resent, unknown)


def _move(statement: str, ids: list[int], was: str, now: datetime, **more: str) -> None:
    """One of reap's moves of expired deliveries (back to the queue, or in doubt)."""
    if ids:
        dialect = current()
        params = {"ids": dialect.ids(ids), "now": dialect.time(now), **more}
        execute.move(statement, params, was=was)


def _interrupted(in_flight: list[Any], now: datetime) -> None:
    """The attempts that never reported: begun when their intent was written (updated_at)."""
    if not in_flight:
        return
    dialect = current()
    timed = counts.Changes()
    for _, _, channel, _, begun in in_flight:
        seconds = (now - _aware(begun)).total_seconds()
        timed.attempted(channel, AttemptOutcome.INTERRUPTED.value, max(seconds, 0.0))
    counts.write(timed)
    rows = [
        {
            "delivery": pk,
            "number": number,
            "started": dialect.time(_aware(begun)),
            "now": dialect.time(now),
            "outcome": AttemptOutcome.INTERRUPTED.value,
            "error": "",
        }
        for pk, _, _, number, begun in in_flight
    ]
    with cursor() as on:
        on.executemany(sql.HISTORY_ROW, rows)
