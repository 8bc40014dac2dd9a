"""The dispatcher: claim a batch, send each delivery through its channel, record the outcome.

Each step returns how much it did, so runners loop "while there is more work" (the embedded
thread, ``bulletin dispatch``, a Celery task) without knowing anything about delivery.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from datetime import datetime, timedelta
from itertools import groupby

from django.db import connections, transaction
from django.utils import timezone

from bulletin.channels import channels_started_on_claim, deduplicating_channels, transport_for
from bulletin.channels.base import (
    AmbiguousError,
    Message,
    PermanentError,
    TransientError,
    Transport,
)
from bulletin.conf import options
from bulletin.dispatch import leases, pacing
from bulletin.dispatch.compose import BatchContent
from bulletin.dispatch.leases import Claimed, Outcome
from bulletin.dispatch.retry import RetryPolicy
from bulletin.domain.models import AttemptOutcome, DeliveryState, Occurrence, Tallied, Tally

log = logging.getLogger(__name__)


def _channel(row: Claimed) -> str:
    return row.channel


class _Lap:
    """One batch's lease: its token, its rows, and when it was last renewed."""

    def __init__(self, lease: timedelta) -> None:
        self.lease = lease
        self.token = leases.new_token()
        self.ids: list[int] = []
        # When the claim was made, and when the current group's attempts began.
        self.renewed = self.claimed_at = self.started = timezone.now()
        self.content: BatchContent

    def keep_alive(self) -> bool:
        """Renew the lease once a third of it has gone; True when it did."""
        now = timezone.now()
        if now - self.renewed <= self.lease / 3:
            return False
        self.renewed = now
        leases.renew(self.ids, self.token, now, self.lease)
        return True


class Dispatcher:
    """One worker's loop state: its transports (connections reused across a batch) and stop flag."""

    def __init__(self, stop: threading.Event | None = None) -> None:
        self.options = options()
        self.policy = RetryPolicy.from_options(self.options)
        self.stop = stop or threading.Event()
        self._transports: dict[str, Transport] = {}
        self._starting = channels_started_on_claim()
        self._occurrences: dict[int, Occurrence] = {}
        # What this dispatcher did, for the summary a stopped `bulletin dispatch` prints.
        self.claimed = self.sent = self.released = 0

    def reap(self) -> int:
        reaped = leases.reap(timezone.now(), deduplicating_channels())
        return len(reaped.requeued) + len(reaped.resent) + len(reaped.unknown)

    def dispatch_batch(self) -> int:
        """Claim and send one batch; returns how many were claimed (0: nothing due)."""
        lap = _Lap(timedelta(seconds=self.options.lease_seconds))
        claimed = leases.claim_rows(
            lap.token, self.options.batch_size, lap.claimed_at, lap.lease, self._starting
        )
        ids = lap.ids = [row.id for row in claimed]
        self.claimed += len(ids)
        try:
            lap.content = BatchContent(claimed, self._occurrences)
            for channel, rows in groupby(sorted(claimed, key=_channel), key=_channel):
                transport = self._transport(channel)
                if transport.deduplicates or transport.transactional:
                    self._deliver_together(transport, list(rows), lap)
                else:
                    self._deliver_each(transport, rows, lap)
        except BaseException:
            leases.release(ids, lap.token, timezone.now())
            raise
        finally:
            self.close()
        if self.stop.is_set():  # a graceful stop: what was not attempted goes back
            self.released += leases.release(ids, lap.token, timezone.now())
        return len(ids)

    def run_until_idle(self) -> int:
        """Reap expired leases and send until nothing is due (or asked to stop)."""
        total = 0
        self._occurrences.clear()  # a new drain sees announcements as they are now
        self.reap()
        while not self.stop.is_set() and (claimed := self.dispatch_batch()):
            total += claimed
        return total

    def close(self) -> None:
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()

    def _transport(self, channel: str) -> Transport:
        if channel not in self._transports:
            self._transports[channel] = transport_for(channel)()
        return self._transports[channel]

    def _deliver_each(self, transport: Transport, rows: Iterable[Claimed], lap: _Lap) -> None:
        """Intent, send, outcome, one delivery at a time: should this worker die mid-send,
        exactly one delivery is in doubt (``unknown``), never the rest of the batch.

        A delivery's outcome and the next one's intent commit together: one transaction per
        delivery, and still never more than one row in ``sending``.
        """
        done: tuple[int, Outcome, datetime] | None = None
        for row in rows:
            if self.stop.is_set():
                break
            lap.keep_alive()
            message = self._prepare(transport, row, lap)
            if message is None:
                continue
            started = timezone.now()
            with transaction.atomic():
                self._finish(done, lap)
                done, attempt = None, leases.begin_attempt(row.id, lap.token, started, lap.lease)
            if attempt is not None:
                done = (row.id, self._attempt(transport, message, attempt), started)
        self._finish(done, lap)

    def _finish(self, done: tuple[int, Outcome, datetime] | None, lap: _Lap) -> None:
        if done is not None:
            delivery_id, outcome, started = done
            leases.finish(delivery_id, lap.token, outcome, timezone.now(), started)

    def _deliver_together(self, transport: Transport, rows: list[Claimed], lap: _Lap) -> None:
        """One intent for all the rows, each sent, outcomes recorded together.

        Only for receivers that drop a repeated key (and the inbox, whose writes commit with
        their outcomes): should this worker die mid-batch, every row it marked is resent, and
        the ones that had gone out are dropped by the receiver. Two statements per batch
        instead of four per delivery.
        """
        messages = [m for row in rows if (m := self._prepare(transport, row, lap))]
        numbers = {row.id: row.attempt for row in rows if row.attempt}
        waiting = [m.delivery_id for m in messages if m.delivery_id not in numbers]
        lap.started = timezone.now() if waiting else lap.claimed_at
        if waiting:  # not begun by the claim: write the intent now
            numbers |= leases.begin_attempts(waiting, lap.token, lap.started, lap.lease)
        recorded: set[int] = set()
        try:
            with transaction.atomic() if transport.transactional else nullcontext():
                recorded = self._send_together(transport, messages, numbers, lap)
        except leases.LeaseLost:
            recorded = set()  # the inbox writes were rolled back with their outcomes
            log.warning("lease lost; inbox writes rolled back", extra={"delivery_ids": [*numbers]})
            # The count finish_many made went with the rollback: every outcome was refused.
            Tally.add(Tallied.OUTCOME_AFTER_LOST_LEASE, len(numbers))
        unsent = [pk for pk in numbers if pk not in recorded]
        self.released += leases.withdraw(unsent, lap.token, timezone.now())

    def _send_together(
        self, transport: Transport, messages: list[Message], numbers: dict[int, int], lap: _Lap
    ) -> set[int]:
        outcomes: dict[int, Outcome] = {}
        recorded: set[int] = set()
        for message in (m for m in messages if m.delivery_id in numbers):
            if self.stop.is_set():
                break
            if lap.keep_alive():  # a slow batch records what it has done so far
                recorded |= self._record(transport, outcomes, lap)
            outcomes[message.delivery_id] = self._attempt(
                transport, message, numbers[message.delivery_id]
            )
        return recorded | self._record(transport, outcomes, lap)

    def _record(self, transport: Transport, outcomes: dict[int, Outcome], lap: _Lap) -> set[int]:
        recorded = leases.finish_many(outcomes, lap.token, timezone.now(), lap.started)
        if transport.transactional and len(recorded) < len(outcomes):
            raise leases.LeaseLost  # inbox items must not outlive a lost lease
        outcomes.clear()
        return recorded

    def _prepare(self, transport: Transport, row: Claimed, lap: _Lap) -> Message | None:
        """The delivery's message, or None when it was deferred by a rate limit or could not
        even be composed (recorded as a failed try: a poisoned row never crashes the worker)."""
        try:
            message = lap.content.message(row)
            ready = pacing.reserve(transport.paces(message), timezone.now())
        except Exception as exc:
            log.exception("cannot prepare delivery", extra={"delivery_id": row.id})
            started = lap.claimed_at if row.attempt else timezone.now()
            attempt = row.attempt or leases.begin_attempt(row.id, lap.token, started, lap.lease)
            if attempt:
                outcome = self._retry(attempt, f"cannot prepare: {exc!r}")
                leases.finish(row.id, lap.token, outcome, timezone.now(), started)
            return None
        if ready > timezone.now():
            leases.defer(row.id, lap.token, ready, timezone.now())
            return None
        return message

    def _send(self, transport: Transport, message: Message) -> None:
        transport.open()  # idempotent: connects on the batch's first send only
        if not transport.transactional:
            transport.send(message)
            return
        with transaction.atomic():  # a savepoint: a failed write leaves the outer one usable
            transport.send(message)

    def _attempt(self, transport: Transport, message: Message, attempt: int) -> Outcome:
        try:
            self._send(transport, message)
        except PermanentError as exc:
            return Outcome(DeliveryState.FAILED, AttemptOutcome.FAILED, str(exc))
        except AmbiguousError as exc:
            if transport.deduplicates:
                return self._retry(attempt, f"ambiguous, resending with the same key: {exc}")
            return Outcome(DeliveryState.UNKNOWN, AttemptOutcome.UNKNOWN, str(exc))
        except TransientError as exc:
            return self._retry(attempt, str(exc), self._throttled(exc))
        except Exception as exc:
            # A bug or a poisoned row must not take the worker down with it: record and back off.
            log.exception("unexpected error sending", extra={"delivery_id": message.delivery_id})
            return self._retry(attempt, f"unexpected error: {exc!r}")
        self.sent += 1
        return Outcome(DeliveryState.SENT, AttemptOutcome.SENT)

    def _throttled(self, error: TransientError) -> timedelta | None:
        """The provider's Retry-After, applied to its whole key so every worker waits."""
        if error.retry_after is None:
            return None
        wait = timedelta(seconds=error.retry_after)
        if error.pace_key:
            pacing.hold(error.pace_key, timezone.now() + wait)
        return wait

    def _retry(self, attempt: int, error: str, wait: timedelta | None = None) -> Outcome:
        if self.policy.gives_up(attempt):
            return Outcome(DeliveryState.FAILED, AttemptOutcome.RETRY, f"gave up: {error}")
        retry_at = timezone.now() + (wait if wait is not None else self.policy.delay(attempt))
        return Outcome(DeliveryState.PENDING, AttemptOutcome.RETRY, error, retry_at)


def drain(lanes: int, stop: threading.Event | None = None) -> int:
    """Send until nothing is due with ``lanes`` dispatchers at once; returns how many claimed."""
    return sum(dispatcher.claimed for dispatcher in drain_lanes(lanes, stop))


def drain_lanes(lanes: int, stop: threading.Event | None = None) -> list[Dispatcher]:
    """Send until nothing is due (or ``stop``) with ``lanes`` dispatchers, each in its thread;
    returns them, with their counts.

    Each lane has its own database and channel connections, so one lane's wait on a mail
    server or an HTTP reply is another lane's turn to compose and record.
    """
    stop = stop or threading.Event()
    dispatchers = [Dispatcher(stop) for _ in range(lanes)]

    def lane(number: int) -> None:
        try:
            dispatchers[number].run_until_idle()
        except Exception:
            # Whatever it held goes back when its lease expires; the other lanes carry on.
            log.exception("dispatch lane failed", extra={"lane": number})
        finally:
            connections.close_all()

    threads = [threading.Thread(target=lane, args=(n,), name=f"lane-{n}") for n in range(lanes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return dispatchers


def run_forever(stop: threading.Event, sleep: Callable[[float], bool] | None = None) -> None:
    """The embedded dispatcher thread: drain, then idle briefly, until stopped."""
    dispatcher = Dispatcher(stop)
    wait = sleep or stop.wait
    while not stop.is_set():
        try:
            dispatcher.run_until_idle()
        except Exception:
            log.exception("dispatcher pass failed; will try again")
        wait(dispatcher.options.idle_seconds)
