"""The moves the planner, people and retention ask for: create (fan-out), hold and unhold
(working hours), skip (a cancel), retry, settle, bounce (a hard bounce came back), prune.

Which deliveries a move concerns is often a question about people (an audience, a working
window) best asked with the ORM: such a move takes that question as a ``QuerySet`` of
deliveries and runs it as the subquery ``{chosen}`` of its own statement.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db.models import QuerySet

from bulletin.dispatch.ledger import execute, sql
from bulletin.dispatch.ledger.counts import Changes, write
from bulletin.dispatch.ledger.cursors import cursor
from bulletin.dispatch.ledger.dialect import current
from bulletin.domain.models import Delivery, DeliveryState

log = logging.getLogger(__name__)


def _chosen(rows: QuerySet[Delivery]) -> tuple[str, dict[str, Any]]:
    ids = rows.order_by().values("id")
    return execute.subquery(current(), ids.query.sql_with_params())


def _move_chosen(template: str, rows: QuerySet[Delivery], was: str, **params: Any) -> list[int]:
    """Move the deliveries of ``rows`` that are in state ``was``; returns their ids."""
    dialect = current()
    try:
        chosen, chosen_params = _chosen(rows)
    except EmptyResultSet:  # a question Django knows has no answer (``pk__in=[]``)
        return []
    params = {k: dialect.time(v) if isinstance(v, datetime) else v for k, v in params.items()}
    moved = execute.move(template, params | chosen_params, was=was, chosen=chosen)
    return [row[3] for row in moved]


def create(rows: tuple[str, tuple[Any, ...]], occurrence: int, channel: str, state: str) -> int:
    """Insert the rows a SELECT over the audience yields (``COLUMNS`` in order), all of one
    occurrence, channel and state; returns how many. Part of the fan-out's transaction."""
    select, params = execute.subquery(current(), rows)
    with cursor() as on:
        on.execute(sql.of(current(), sql.CREATE, rows=select), params)
        count = int(on.rowcount)
        changes = Changes()
        changes.created(occurrence, channel, state, count)
        changes.write(on)
    return count


def create_one(
    occurrence: int,
    place: int,
    channel: str,
    now: datetime,
    text: tuple[str, int | None] = ("", None),
) -> None:
    """The one delivery to a place (a channel, a webhook) for an occurrence, pending;
    ``text``: the language and the id of the version it sends (a place reads the default)."""
    params = {
        "language": text[0],
        "version": text[1],
        "occurrence": occurrence,
        "employee": None,
        "place": place,
        "channel": channel,
        "state": DeliveryState.PENDING.value,
        "now": current().time(now),
        "error": "",
    }
    execute.run(sql.CREATE_ONE, params)
    changes = Changes()
    changes.created(occurrence, channel, DeliveryState.PENDING.value, 1)
    write(changes)


def hold(rows: QuerySet[Delivery], until: datetime, reason: str, now: datetime) -> int:
    """Pending deliveries of ``rows`` wait for their working window to open at ``until``."""
    moved = _move_chosen(sql.HOLD, rows, "pending", until=until, reason=reason[:200], now=now)
    return len(moved)


def unhold(rows: QuerySet[Delivery], now: datetime, due: datetime | None = None) -> int:
    """Held deliveries of ``rows`` become pending: due when their window opened, or ``due``."""
    return len(_move_chosen(sql.UNHOLD, rows, "held", now=now, due=due))


def skip(rows: QuerySet[Delivery], states: Sequence[str], error: str, now: datetime) -> int:
    """Deliveries of ``rows`` in ``states`` will not be sent, and say why."""
    return sum(len(_move_chosen(sql.SKIP, rows, was, error=error, now=now)) for was in states)


def retry(rows: QuerySet[Delivery], states: Sequence[str], now: datetime) -> int:
    """Deliveries of ``rows`` in ``states`` go again, now, with a fresh retry budget."""
    return sum(len(_move_chosen(sql.RETRY, rows, was, now=now)) for was in states)


def lock(ids: Sequence[int]) -> dict[int, str]:
    """The named deliveries' states, locked against other writers until the transaction ends."""
    found = execute.fetch(sql.LOCK_IDS, {"ids": current().ids(ids)})
    return {pk: state for pk, state in found}


def settle(ids: Sequence[int], verdict: str, note: str, now: datetime) -> int:
    """Unknown deliveries, as a person decided: ``sent``, ``failed`` (with ``note``) or
    ``resend`` (pending again, a fresh budget); returns how many moved."""
    if verdict == "resend":
        return retry(Delivery.objects.filter(pk__in=list(ids)), ["unknown"], now)
    dialect = current()
    params = {"ids": dialect.ids(ids), "now": dialect.time(now), "error": note}
    template = sql.SETTLE_SENT if verdict == "sent" else sql.SETTLE_FAILED
    return len(execute.move(template, params, was="unknown"))


# A bounce proves the message was handed over, so an ``unknown`` one (interrupted mid-send)
# bounced too. A ``sending`` one keeps its state: its worker still holds the lease and writes
# the outcome and the attempt's history; taking the row from under it would lose both.
BOUNCEABLE = ("sent", "unknown")


def bounce(ids: Sequence[int], error: str, now: datetime) -> list[int]:
    """Sent (or unknown) deliveries that came back as hard bounces: ``bounced``, the reason in
    ``last_error``; returns the ids that moved. Part of the caller's transaction."""
    dialect = current()
    params = {"ids": dialect.ids(ids), "now": dialect.time(now), "error": error}
    moved: list[int] = []
    for was in BOUNCEABLE:
        moved += [row[3] for row in execute.move(sql.BOUNCE, params, was=was)]
    return moved


def prune(ids: Sequence[int]) -> tuple[int, int]:
    """Delete these deliveries and their history; their counts move from live to pruned.
    Returns (deliveries, attempts) deleted."""
    dialect = current()
    params = {"ids": dialect.ids(ids)}
    with execute.together(), cursor() as on:
        on.execute(sql.of(dialect, sql.PRUNE_HISTORY), params)
        attempts = int(on.rowcount)
        on.execute(sql.of(dialect, sql.PRUNE), params)
        gone = on.fetchall()
        changes = Changes()
        changes.removed(gone)
        changes.write(on)
    return len(gone), attempts
