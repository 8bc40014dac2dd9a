"""Celery tasks: thin triggers for planning and dispatch, safe to run twice or concurrently.

- ``bulletin.tick`` (beat, every few seconds): one planning pass; if deliveries are due,
  enqueue dispatch lanes.
- ``bulletin.dispatch``: drain due deliveries for a bounded time, then return.
- ``bulletin.sweep`` (beat): settle expired leases and start lanes if anything is due — this
  is what recovers from lost messages, a restarted broker or workers killed mid-task.
"""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.utils import timezone

from bulletin.conf import options
from bulletin.dispatch.planning import tick
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import Delivery, DeliveryState

log = logging.getLogger(__name__)


def deliveries_due() -> bool:
    return Delivery.objects.filter(state=DeliveryState.PENDING, due_at__lte=timezone.now()).exists()


def start_lanes() -> int:
    """Enqueue one dispatch task per lane; stale ones expire rather than pile up."""
    lanes = options().dispatch_lanes
    for _ in range(lanes):
        dispatch_task.apply_async(expires=options().dispatch_budget_seconds)
    return lanes


@shared_task(name="bulletin.tick", ignore_result=True)
def tick_task() -> dict[str, int]:
    result = tick()
    lanes = start_lanes() if deliveries_due() else 0
    return {"occurrences": result.occurrences, "deliveries": result.deliveries, "lanes": lanes}


@shared_task(name="bulletin.dispatch", ignore_result=True)
def dispatch_task() -> int:
    """Send batches until nothing is due or the time budget is spent (connections are kept
    from batch to batch meanwhile). Deliveries a pace holds back a moment are still due: the
    task waits for its booked slots and for what it held back, never past its budget."""
    deadline = time.monotonic() + options().dispatch_budget_seconds
    return Dispatcher().run_until_idle(until=deadline)


@shared_task(name="bulletin.sweep", ignore_result=True)
def sweep_task() -> dict[str, int]:
    reaped = Dispatcher().reap()
    lanes = start_lanes() if deliveries_due() else 0
    return {"reaped": reaped, "lanes": lanes}
