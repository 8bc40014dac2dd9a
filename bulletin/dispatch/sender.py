"""The dispatcher: claim a batch, send each delivery through its channel, record the outcome.

Each step returns how much it did, so runners loop "while there is more work" (the embedded
thread, ``bulletin dispatch``, a Celery task) without knowing anything about delivery.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from datetime import datetime, timedelta
from itertools import groupby

from django.db import connections, transaction
from django.utils import timezone

from bulletin.channels import channels_started_on_claim, deduplicating_channels, transport_for
from bulletin.channels.base import (
    AmbiguousError,
    Ended,
    Message,
    PermanentError,
    Sends,
    TransientError,
    Transport,
)
from bulletin.conf import options
from bulletin.dispatch import leases, ledger, pacing
from bulletin.dispatch.compose import BatchContent
from bulletin.dispatch.leases import Claimed, Outcome
from bulletin.dispatch.retry import RetryPolicy
from bulletin.domain.models import AttemptOutcome, DeliveryState, Occurrence, Tallied, Tally

log = logging.getLogger(__name__)


_SENT = Outcome(DeliveryState.SENT, AttemptOutcome.SENT)


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
        self._renew_every = lease / 3
        self.content: BatchContent

    def keep_alive(self) -> bool:
        """Renew the lease once a third of it has gone; True when it did."""
        now = timezone.now()
        if now - self.renewed <= self._renew_every:
            return False
        self.renewed = now
        leases.renew(self.ids, self.token, now, self.lease)
        return True


class Dispatcher:
    """One worker's loop state: its transports (connections reused from batch to batch while
    it drains) and stop flag."""

    def __init__(self, stop: threading.Event | None = None) -> None:
        self.options = options()
        self.policy = RetryPolicy.from_options(self.options)
        self.stop = stop or threading.Event()
        self._transports: dict[str, Transport] = {}
        self._sends: dict[str, Sends] = {}
        self._starting = channels_started_on_claim()
        self._occurrences: dict[int, Occurrence] = {}
        # What this dispatcher did, for the summary a stopped `bulletin dispatch` prints.
        self.claimed = self.sent = self.released = 0

    def reap(self) -> int:
        reaped = leases.reap(timezone.now(), deduplicating_channels())
        return len(reaped.requeued) + len(reaped.resent) + len(reaped.unknown)

    def dispatch_batch(self) -> int:
        """Claim and send one batch; returns how many were claimed (0: nothing due). Its
        connections are closed afterwards (a drain keeps them for its next batch)."""
        try:
            return self._batch()
        finally:
            self.close()

    def run_until_idle(self, until: float | None = None) -> int:
        """Reap expired leases and send until nothing is due, asked to stop, or past ``until``
        (a ``time.monotonic()`` reading: a Celery task's budget)."""
        total = 0
        self._occurrences.clear()  # a new drain sees announcements as they are now
        self.reap()
        try:
            while not self.stop.is_set() and (until is None or time.monotonic() < until):
                if not (claimed := self._batch()):
                    break
                total += claimed
        finally:
            self.close()
        return total

    def close(self) -> None:
        for sends in self._sends.values():
            sends.close()
        self._sends.clear()
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()

    def _batch(self) -> int:
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
                    self._deliver_each(channel, transport, rows, lap)
        except BaseException:
            leases.release(ids, lap.token, timezone.now())
            raise  # the caller closes the connections: one in an unknown state is not reused
        if self.stop.is_set():  # a graceful stop: what was not attempted goes back
            self.released += leases.release(ids, lap.token, timezone.now())
        return len(ids)

    def _transport(self, channel: str) -> Transport:
        if channel not in self._transports:
            self._transports[channel] = transport_for(channel)()
        return self._transports[channel]

    def _sends_for(self, channel: str, transport: Transport) -> Sends:
        if channel not in self._sends:
            self._sends[channel] = transport.sends()
        return self._sends[channel]

    def _deliver_each(
        self, channel: str, transport: Transport, rows: Iterable[Claimed], lap: _Lap
    ) -> None:
        """Intent, send, outcome for every delivery: should this worker die, the deliveries
        in doubt (``unknown``) are those whose send was under way, never the rest.

        The transport may have several sends under way (email: one per SMTP connection).
        Each time some end, their outcomes and the intents of the next ones commit together:
        one transaction per round, however many connections it serves.
        """
        sends = self._sends_for(channel, transport)
        writes = ledger.SerialLedger(lap.token, lap.lease)
        waiting: deque[Claimed] = deque(rows)
        under_way: dict[int, tuple[int, datetime]] = {}  # delivery id → attempt, when begun
        ended: list[ledger.Attempted] = []
        while True:
            lap.keep_alive()
            starting = self._next_messages(transport, sends, waiting, lap)
            now = timezone.now()
            begun = writes.step(ended, [m.delivery_id for m in starting], now)
            tries = [self._begin(transport, sends, m, begun, now, under_way) for m in starting]
            ended = [attempt for attempt in tries if attempt is not None]
            if under_way:
                ended += [self._ended(transport, end, under_way) for end in sends.ended()]
            elif not ended and (not waiting or self.stop.is_set()):
                return

    def _next_messages(
        self, transport: Transport, sends: Sends, waiting: deque[Claimed], lap: _Lap
    ) -> list[Message]:
        """The next messages in order, as many as there are sends ready to begin."""
        if self.stop.is_set() or not waiting:
            return []
        room, messages = sends.ready(len(waiting)), list[Message]()
        while waiting and len(messages) < room:
            if (message := self._prepare(transport, waiting.popleft(), lap)) is not None:
                messages.append(message)
        return messages

    def _begin(
        self,
        transport: Transport,
        sends: Sends,
        message: Message,
        begun: dict[int, int],
        now: datetime,
        under_way: dict[int, tuple[int, datetime]],
    ) -> ledger.Attempted | None:
        """Begin the send its intent allows; an attempt that could not even begin has ended."""
        if (attempt := begun.get(message.delivery_id)) is None:
            return None  # the lease was lost: someone else has it now
        try:
            sends.begin(message)
        except Exception as exc:
            return ledger.Attempted(
                message.delivery_id, self._outcome(transport, Ended(message, exc), attempt), now
            )
        under_way[message.delivery_id] = attempt, now
        return None

    def _ended(
        self, transport: Transport, end: Ended, under_way: dict[int, tuple[int, datetime]]
    ) -> ledger.Attempted:
        delivery_id = end.message.delivery_id
        attempt, began = under_way.pop(delivery_id)
        return ledger.Attempted(delivery_id, self._outcome(transport, end, attempt), began)

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
            paces = transport.paces(message)
            ready = pacing.reserve(paces, timezone.now()) if paces else None
        except Exception as exc:
            log.exception("cannot prepare delivery", extra={"delivery_id": row.id})
            started = lap.claimed_at if row.attempt else timezone.now()
            attempt = row.attempt or leases.begin_attempt(row.id, lap.token, started, lap.lease)
            if attempt:
                outcome = self._retry(attempt, f"cannot prepare: {exc!r}")
                leases.finish(row.id, lap.token, outcome, timezone.now(), started)
            return None
        if ready is not None and ready > timezone.now():
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
        except Exception as exc:
            return self._outcome(transport, Ended(message, exc), attempt)
        return self._outcome(transport, Ended(message), attempt)

    def _outcome(self, transport: Transport, end: Ended, attempt: int) -> Outcome:
        """What an ended send means for its delivery."""
        error = end.error
        if error is None:
            self.sent += 1
            return _SENT
        if isinstance(error, PermanentError):
            return Outcome(DeliveryState.FAILED, AttemptOutcome.FAILED, str(error))
        if isinstance(error, AmbiguousError):
            if transport.deduplicates:
                return self._retry(attempt, f"ambiguous, resending with the same key: {error}")
            return Outcome(DeliveryState.UNKNOWN, AttemptOutcome.UNKNOWN, str(error))
        if isinstance(error, TransientError):
            return self._retry(attempt, str(error), self._throttled(error))
        # A bug or a poisoned row must not take the worker down with it: record and back off.
        extra = {"delivery_id": end.message.delivery_id}
        log.error("unexpected error sending", exc_info=error, extra=extra)
        return self._retry(attempt, f"unexpected error: {error!r}")

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
