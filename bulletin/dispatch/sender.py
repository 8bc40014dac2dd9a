"""The dispatcher: claim a batch, send each delivery through its channel, record the outcome.

Each step returns how much it did, so runners loop "while there is more work" (the embedded
thread, ``bulletin dispatch``, a Celery task) without knowing anything about delivery.

Paced channels (see :mod:`bulletin.dispatch.pacing`): a send books its slot on every key it
needs and the dispatcher waits for it, renewing its lease, rather than putting the delivery
back in the queue; only a slot further off than the *horizon* (a quarter of the lease, and
never past a Celery task's budget) goes back to the queue, due then. A drain that finds
nothing due waits for what it held back itself (a far slot, a 429's Retry-After) if that is
due within the horizon: work held back a moment by a pace is still due. An ordinary retry's
backoff (15 s and more) is not waited for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import nullcontext, suppress
from datetime import datetime, timedelta
from itertools import groupby

from django.db import connections, transaction
from django.utils import timezone

from bulletin.channels import channels_started_on_claim, deduplicating_channels
from bulletin.channels.base import (
    AmbiguousError,
    Ended,
    Message,
    PermanentError,
    Sends,
    TransientError,
    Transport,
    TransportError,
)
from bulletin.conf import options
from bulletin.dispatch import holding, identities, ledger, pacing
from bulletin.dispatch.compose import BatchContent
from bulletin.dispatch.ledger import Claimed, Outcome
from bulletin.dispatch.retry import RetryPolicy
from bulletin.domain.models import AttemptOutcome, DeliveryState, Occurrence, Tallied, Tally

log = logging.getLogger(__name__)


_SENT = Outcome(DeliveryState.SENT, AttemptOutcome.SENT)
# The outcomes a drain reports, by the state each leaves its delivery in.
REPORTED = {
    DeliveryState.SENT: "sent",
    DeliveryState.FAILED: "failed",
    DeliveryState.UNKNOWN: "unknown",
    DeliveryState.PENDING: "retrying",
}


def _channel(row: Claimed) -> str:
    return row.channel


def _together(transport: Transport) -> bool:
    """Sent as a batch with one intent (see ``_deliver_together``): where a resend is
    harmless and no pace makes a send wait for its slot after the intents are written."""
    unpaced = type(transport).paces is Transport.paces
    return transport.transactional or (transport.deduplicates and unpaced)


class _Lap:
    """One batch's lease: its token, its rows, and when it was last renewed."""

    def __init__(self, lease: timedelta) -> None:
        self.lease = lease
        self.token = ledger.new_token()
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
        ledger.renew(self.ids, self.token, now, self.lease)
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
        # Each delivery's latest outcome here (a time, its state): what a drain reports.
        self.outcomes: dict[int, tuple[float, DeliveryState]] = {}
        # When what this dispatcher put back for a pace or a 429 comes due again.
        self._held: list[datetime] = []
        self._until: float | None = None  # a Celery task's budget (time.monotonic())

    def reap(self) -> int:
        """Settle expired leases, and let held deliveries whose working window opened go."""
        holding.release_opened(timezone.now())
        reaped = ledger.reap(timezone.now(), deduplicating_channels())
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
        total, self._until = 0, until
        self._occurrences.clear()  # a new drain sees announcements as they are now
        self.reap()
        try:
            while not self.stop.is_set() and (until is None or time.monotonic() < until):
                if claimed := self._batch():
                    total += claimed
                elif not self._wait_for_held():
                    break
        finally:
            self.close()
        return total

    def horizon(self) -> timedelta:
        """How far ahead this dispatcher waits for a paced slot or held-back work: a quarter
        of the lease (renewed meanwhile), and never past the task's budget."""
        ahead = self.options.lease_seconds / 4
        if self._until is not None:
            ahead = max(0.0, min(ahead, self._until - time.monotonic()))
        return timedelta(seconds=ahead)

    def _wait_for_held(self) -> bool:
        """Nothing is due: wait for the soonest delivery this drain held back, if it comes
        due within the horizon; False when there is none (or the dispatcher was stopped)."""
        now = timezone.now()
        self._held = sorted(at for at in self._held if at > now)
        if not self._held or self._held[0] - now > self.horizon():
            return False
        wait = (self._held[0] - now).total_seconds()
        log.info("waiting for deliveries held back by a pace", extra={"seconds": wait})
        return not self.stop.wait(wait)

    def close(self) -> None:
        for sends in self._sends.values():
            sends.close()
        self._sends.clear()
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()

    def _batch(self) -> int:
        lap = _Lap(timedelta(seconds=self.options.lease_seconds))
        claimed = ledger.claim_rows(
            lap.token, self.options.batch_size, lap.claimed_at, lap.lease, self._starting
        )
        ids = lap.ids = [row.id for row in claimed]
        self.claimed += len(ids)
        try:
            lap.content = BatchContent(claimed, self._occurrences)
            for channel, rows in groupby(sorted(claimed, key=_channel), key=_channel):
                transport = self._transport(channel)
                if _together(transport):
                    self._deliver_together(transport, list(rows), lap)
                else:
                    self._deliver_each(channel, transport, rows, lap)
        except BaseException:
            ledger.release(ids, lap.token, timezone.now())
            raise  # the caller closes the connections: one in an unknown state is not reused
        if self.stop.is_set():  # a graceful stop: what was not attempted goes back
            self.released += ledger.release(ids, lap.token, timezone.now())
        return len(ids)

    def _transport(self, channel: str) -> Transport:
        if channel not in self._transports:
            self._transports[channel] = identities.transport(channel)
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
        while waiting and len(messages) < room and not self.stop.is_set():
            row = waiting.popleft()
            message = self._prepare(transport, row, lap)
            if message is not None and self._paced(transport, row, message, lap):
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
            numbers |= ledger.begin_attempts(waiting, lap.token, lap.started, lap.lease)
        recorded: set[int] = set()
        try:
            with transaction.atomic() if transport.transactional else nullcontext():
                recorded = self._send_together(transport, messages, numbers, lap)
        except ledger.LeaseLost:
            recorded = set()  # the inbox writes were rolled back with their outcomes
            log.warning("lease lost; inbox writes rolled back", extra={"delivery_ids": [*numbers]})
            # The count finish_many made went with the rollback: every outcome was refused.
            Tally.add(Tallied.OUTCOME_AFTER_LOST_LEASE, len(numbers))
        unsent = [pk for pk in numbers if pk not in recorded]
        self.released += ledger.withdraw(unsent, lap.token, timezone.now())

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
        recorded = ledger.finish_many(outcomes, lap.token, timezone.now(), lap.started)
        if transport.transactional and len(recorded) < len(outcomes):
            raise ledger.LeaseLost  # inbox items must not outlive a lost lease
        outcomes.clear()
        return recorded

    def _prepare(self, transport: Transport, row: Claimed, lap: _Lap) -> Message | None:
        """The delivery's message, or None when it could not even be composed (recorded as
        a failed try: a poisoned row never crashes the worker)."""
        try:
            message = lap.content.message(row, transport.reads_parts)
            transport.paces(message)  # a pace that cannot be worked out is the row's fault
        except Exception as exc:
            log.exception("cannot prepare delivery", extra={"delivery_id": row.id})
            started = lap.claimed_at if row.attempt else timezone.now()
            attempt = row.attempt or ledger.begin_attempt(row.id, lap.token, started, lap.lease)
            if attempt:
                outcome = self._retry(attempt, f"cannot prepare: {exc!r}")
                self._note(row.id, outcome)
                ledger.finish(row.id, lap.token, outcome, timezone.now(), started)
            return None
        return message

    def _paced(self, transport: Transport, row: Claimed, message: Message, lap: _Lap) -> bool:
        """Wait for the message's slot on every key it must respect; False when the slot is
        beyond the horizon (the delivery goes back to the queue, due then) or the dispatcher
        was asked to stop (the batch gives the row back)."""
        paces = transport.paces(message)
        if paces:
            # Its set-up (an HTTP client loads its CA bundle: tens of ms) is paid before the
            # slot, not between the slot and the send; a failure here the send meets again.
            with suppress(TransportError):
                transport.open()
        while paces:
            slot = pacing.book(paces, self.horizon())
            if not slot.booked:
                if ledger.defer(row.id, lap.token, slot.at, timezone.now()):
                    self._held.append(slot.at)
                return False
            if slot.wait <= 0:
                return True  # booked now: any hold was already taken into account
            if not self._wait(slot.wait, lap):
                return False
            if pacing.held_until(paces, timezone.now()) is None:
                return True  # else a 429 came while it waited: book again, after the hold
        return True

    def _wait(self, seconds: float, lap: _Lap) -> bool:
        """Sleep ``seconds`` (a booked slot), keeping the lease; False if asked to stop."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.stop.wait(min(left, 1.0)):
                return False
            lap.keep_alive()
        return True

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
        outcome = self._judge(transport, end, attempt)
        self._note(end.message.delivery_id, outcome)
        return outcome

    def _note(self, delivery_id: int, outcome: Outcome) -> None:
        if outcome.state == DeliveryState.SENT:
            self.sent += 1
        self.outcomes[delivery_id] = time.monotonic(), outcome.state

    def _judge(self, transport: Transport, end: Ended, attempt: int) -> Outcome:
        error = end.error
        if error is None:
            return _SENT
        if isinstance(error, PermanentError):
            return Outcome(DeliveryState.FAILED, AttemptOutcome.FAILED, str(error))
        if isinstance(error, AmbiguousError):
            if transport.deduplicates:
                return self._retry(attempt, f"ambiguous, resending with the same key: {error}")
            return Outcome(DeliveryState.UNKNOWN, AttemptOutcome.UNKNOWN, str(error))
        if isinstance(error, TransientError):
            outcome = self._retry(attempt, str(error), wait := self._throttled(error))
            if wait is not None and outcome.retry_at is not None:
                self._held.append(outcome.retry_at)  # a moment's hold: the drain waits for it
            return outcome
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


def outcomes(dispatchers: Iterable[Dispatcher]) -> dict[str, int]:
    """How the deliveries these dispatchers attempted ended, each counted once by its latest
    outcome (retried, then sent: sent): ``{"sent": S, "failed": F, "unknown": U,
    "retrying": R}``."""
    latest: dict[int, tuple[float, DeliveryState]] = {}
    for dispatcher in dispatchers:
        for delivery_id, noted in dispatcher.outcomes.items():
            latest[delivery_id] = max(latest.get(delivery_id, noted), noted)
    counts = dict.fromkeys(REPORTED.values(), 0)
    for _, state in latest.values():
        counts[REPORTED[state]] += 1
    return counts


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
