"""The dispatcher: claim a batch, send each delivery through its channel, record the outcome.

Each step returns how much it did, so runners loop "while there is more work" (the embedded
thread, ``bulletin dispatch``, a Celery task) without knowing anything about delivery.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from bulletin.channels import deduplicating_channels, transport_for
from bulletin.channels.base import (
    AmbiguousError,
    Message,
    PermanentError,
    TransientError,
    Transport,
)
from bulletin.conf import options
from bulletin.dispatch import leases, pacing
from bulletin.dispatch.compose import compose
from bulletin.dispatch.leases import Outcome
from bulletin.dispatch.retry import RetryPolicy
from bulletin.domain.models import AttemptOutcome, Delivery, DeliveryState

log = logging.getLogger(__name__)


class Dispatcher:
    """One worker's loop state: its transports (connections reused across a batch) and stop flag."""

    def __init__(self, stop: threading.Event | None = None) -> None:
        self.options = options()
        self.policy = RetryPolicy.from_options(self.options)
        self.stop = stop or threading.Event()
        self._transports: dict[str, Transport] = {}

    def reap(self) -> int:
        reaped = leases.reap(timezone.now(), deduplicating_channels())
        return len(reaped.requeued) + len(reaped.resent) + len(reaped.unknown)

    def dispatch_batch(self) -> int:
        """Claim and send one batch; returns how many were claimed (0: nothing due)."""
        lease = timedelta(seconds=self.options.lease_seconds)
        token = leases.new_token()
        ids = leases.claim(token, self.options.batch_size, timezone.now(), lease)
        batch = Delivery.objects.filter(pk__in=ids).select_related(
            "employee", "place", "occurrence__announcement", "occurrence__version"
        )
        renewed = timezone.now()
        try:
            for delivery in batch.order_by("channel", "pk"):
                if self.stop.is_set():
                    leases.release(ids, token, timezone.now())
                    break
                if timezone.now() - renewed > lease / 3:
                    renewed = timezone.now()
                    leases.renew(ids, token, renewed, lease)
                self._deliver(delivery, token, lease)
        finally:
            self.close()
        return len(ids)

    def run_until_idle(self) -> int:
        """Reap expired leases and send until nothing is due (or asked to stop)."""
        total = 0
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

    def _deliver(self, delivery: Delivery, token: str, lease: timedelta) -> None:
        transport = self._transport(delivery.channel)
        try:
            message: Message | None = compose(delivery)
            ready = pacing.reserve(transport.paces(message), timezone.now())  # type: ignore[arg-type]
        except Exception as exc:
            # A row that cannot even be prepared is recorded as a failed try, not a crash.
            log.exception("cannot prepare delivery", extra={"delivery_id": delivery.pk})
            message, ready, problem = None, None, exc
        if ready is not None and ready > timezone.now():
            leases.defer(delivery.pk, token, ready, timezone.now())
            return
        attempt = leases.begin_attempt(delivery.pk, token, timezone.now(), lease)
        if attempt is None:
            return
        if message is None:
            outcome = self._retry(attempt, f"cannot prepare: {problem!r}")
            leases.finish(delivery.pk, token, outcome, timezone.now())
        elif transport.transactional:
            self._deliver_in_transaction(transport, message, attempt, token)
        else:
            outcome = self._attempt(transport, message, attempt)
            leases.finish(delivery.pk, token, outcome, timezone.now())

    def _deliver_in_transaction(
        self, transport: Transport, message: Message, attempt: int, token: str
    ) -> None:
        """Side effect and outcome commit together: the inbox item exists iff it is sent."""
        try:
            with transaction.atomic():
                outcome = self._attempt(transport, message, attempt)
                if not leases.finish(message.delivery_id, token, outcome, timezone.now()):
                    raise leases.LeaseLost
        except leases.LeaseLost:
            log.warning(
                "lease lost; inbox write rolled back", extra={"delivery_id": message.delivery_id}
            )

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
