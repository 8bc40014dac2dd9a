"""The dispatcher: claim a batch, send each delivery through its channel, record the outcome.

Each step returns how much it did, so runners loop "while there is more work" (the embedded
thread, ``bulletin dispatch``, a Celery task) without knowing anything about delivery.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from django.utils import timezone

from bulletin.channels import deduplicating_channels, transport_for
from bulletin.channels.base import (
    AmbiguousError,
    Message,
    PermanentError,
    Recipient,
    TransientError,
    Transport,
)
from bulletin.channels.render import render_html, render_text
from bulletin.conf import options
from bulletin.dispatch import leases
from bulletin.dispatch.leases import Outcome
from bulletin.dispatch.retry import RetryPolicy
from bulletin.domain.models import AttemptOutcome, Delivery, DeliveryState

log = logging.getLogger(__name__)


def compose(delivery: Delivery) -> Message:
    employee = delivery.employee
    announcement = delivery.occurrence.announcement
    recipient = Recipient(email=employee.email, name=employee.name, timezone=employee.timezone)
    return Message(
        idempotency_key=delivery.idempotency_key,
        recipient=recipient,
        title=announcement.title,
        text=render_text(announcement.body, recipient),
        html=render_html(announcement.body, recipient),
    )


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
            "employee", "occurrence__announcement"
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
        attempt = leases.begin_attempt(delivery.pk, token, timezone.now(), lease)
        if attempt is None:
            return
        outcome = self._attempt(delivery, attempt)
        leases.finish(delivery.pk, token, outcome, timezone.now())

    def _attempt(self, delivery: Delivery, attempt: int) -> Outcome:
        transport_type = transport_for(delivery.channel)
        try:
            self._transport(delivery.channel).send(compose(delivery))
        except PermanentError as exc:
            return Outcome(DeliveryState.FAILED, AttemptOutcome.FAILED, str(exc))
        except AmbiguousError as exc:
            if transport_type.deduplicates:
                return self._retry(attempt, f"ambiguous, resending with the same key: {exc}")
            return Outcome(DeliveryState.UNKNOWN, AttemptOutcome.UNKNOWN, str(exc))
        except TransientError as exc:
            return self._retry(attempt, str(exc))
        except Exception as exc:
            # A bug or a poisoned row must not take the worker down with it: record and back off.
            log.exception("unexpected error sending", extra={"delivery_id": delivery.pk})
            return self._retry(attempt, f"unexpected error: {exc!r}")
        return Outcome(DeliveryState.SENT, AttemptOutcome.SENT)

    def _retry(self, attempt: int, error: str) -> Outcome:
        if self.policy.gives_up(attempt):
            return Outcome(DeliveryState.FAILED, AttemptOutcome.RETRY, f"gave up: {error}")
        retry_at = timezone.now() + self.policy.delay(attempt)
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
