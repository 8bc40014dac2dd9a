"""Rate limits kept in the database: every worker respects one pace and one backoff."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from itertools import pairwise
from typing import Any, ClassVar

import pytest
from django.db import transaction
from django.utils import timezone

from bulletin.channels import TRANSPORTS
from bulletin.channels.base import Message, TransientError
from bulletin.channels.fake import FakeTransport
from bulletin.dispatch import ledger, pacing
from bulletin.dispatch.sender import Dispatcher, outcomes
from bulletin.domain.models import Attempt, ChannelPace, Delivery, DeliveryState, InboxItem
from tests import factories

pytestmark = pytest.mark.django_db


class PacedTransport(FakeTransport):
    """A fake channel that asks for one send per ``interval`` seconds on one key, and notes
    when each send went out."""

    interval: ClassVar[float] = 60.0
    sent_at: ClassVar[list[float]] = []

    def paces(self, message: Message) -> list[tuple[str, float]]:
        return [("fake:room", self.interval), ("fake:api", 0.0)]

    def send(self, message: Message) -> None:
        super().send(message)
        self.sent_at.append(time.monotonic())


@pytest.fixture
def paced(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[PacedTransport]]:
    monkeypatch.setitem(TRANSPORTS, "fake", PacedTransport)
    PacedTransport.reset()
    PacedTransport.sent_at.clear()
    yield PacedTransport
    PacedTransport.reset()
    PacedTransport.interval = 60.0


SOON = timedelta(seconds=10)


def next_slot(key: str) -> Any:
    return ChannelPace.objects.get(key=key).next_slot_at


def test_a_free_key_is_booked_now_and_its_next_slot_is_one_interval_on() -> None:
    slot = pacing.book([("k", 2.0)], SOON)
    assert slot.booked and slot.wait == 0
    assert next_slot("k") == slot.at + timedelta(seconds=2.0 * pacing.SPACING)


def test_bookings_queue_one_interval_after_the_previous_slot_not_after_the_clock() -> None:
    slots = [pacing.book([("k", 2.0)], SOON) for _ in range(3)]
    assert all(slot.booked for slot in slots)
    gaps = [(later.at - earlier.at).total_seconds() for earlier, later in pairwise(slots)]
    assert gaps == [pytest.approx(2.0 * pacing.SPACING)] * 2
    assert slots[2].wait == pytest.approx(4.0 * pacing.SPACING, abs=0.05)


def test_a_slot_is_the_latest_of_every_key_and_books_each_from_there() -> None:
    busy = pacing.book([("busy", 3.0)], SOON).at + timedelta(seconds=3.0 * pacing.SPACING)
    slot = pacing.book([("free", 1.0), ("busy", 3.0)], SOON)
    assert slot.at == busy
    assert next_slot("free") == busy + timedelta(seconds=1.0 * pacing.SPACING)


def test_a_slot_beyond_the_horizon_is_neither_booked_nor_leaves_a_key_held() -> None:
    pacing.book([("k", 30.0)], SOON)
    before = next_slot("k")
    slot = pacing.book([("k", 30.0), ("other", 1.0)], SOON)
    assert not slot.booked and slot.at == before and slot.wait > 10
    assert next_slot("k") == before  # nothing booked that nobody will use
    assert next_slot("other") <= timezone.now()  # still free


def test_a_hold_pushes_a_key_out_but_never_pulls_it_in_and_holds_zero_spaced_keys() -> None:
    now = timezone.now()
    pacing.hold("api", now + timedelta(seconds=30))
    pacing.hold("api", now + timedelta(seconds=5))
    assert pacing.held_until([("api", 0.0)], now) == now + timedelta(seconds=30)
    slot = pacing.book([("api", 0.0)], timedelta(minutes=1))
    assert slot.booked and slot.at == now + timedelta(seconds=30)
    assert not ChannelPace.objects.filter(key="api").exists()  # a zero spacing books nothing


def test_other_senders_bookings_are_not_taken_for_a_hold() -> None:
    for _ in range(3):
        pacing.book([("k", 1.0)], SOON)
    assert pacing.held_until([("k", 1.0)], timezone.now()) is None


def test_a_drain_waits_for_each_booked_slot_and_sends_everything(paced: Any) -> None:
    paced.interval = 0.2
    factories.employees(4)
    factories.fired(channels=("fake",))
    dispatcher = Dispatcher()
    dispatcher.run_until_idle()
    assert len(paced.sent) == 4
    # Each send waits for its slot, 0.2 s (and 2 %) after the last one's. A send lands a few
    # milliseconds after its slot, more on a busy machine, so one late send can bring the next
    # closer than 0.2 s: the spacing is judged with room for that, and over the whole drain.
    gaps = [later - earlier for earlier, later in pairwise(paced.sent_at)]
    assert all(gap >= 0.1 for gap in gaps), gaps
    assert sum(gaps) >= 3 * 0.2 * 0.9, gaps
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.SENT}
    assert outcomes([dispatcher]) == {"sent": 4, "failed": 0, "unknown": 0, "retrying": 0}


def test_a_slot_beyond_the_horizon_goes_back_to_the_queue_without_spending_an_attempt(
    paced: Any,
) -> None:
    factories.employees(3)
    factories.fired(channels=("fake",))
    Dispatcher().dispatch_batch()
    assert len(paced.sent) == 1
    waiting = Delivery.objects.filter(state=DeliveryState.PENDING)
    assert waiting.count() == 2
    assert all(d.attempts == 0 and d.due_at > timezone.now() for d in waiting)
    assert Attempt.objects.count() == 1
    # Only the one sent holds the key: the two put back booked nothing.
    assert next_slot("fake:room") <= timezone.now() + timedelta(seconds=60 * pacing.SPACING)


def test_a_429_holds_the_key_for_every_worker_until_retry_after(paced: Any) -> None:
    factories.employees(2)
    factories.fired(channels=("fake",))
    paced.script["person0@example.com"] = [
        TransientError("429", retry_after=120, pace_key="fake:api")
    ]
    before = timezone.now()
    Dispatcher().dispatch_batch()
    throttled = Delivery.objects.get(employee__email="person0@example.com")
    assert throttled.state == DeliveryState.PENDING and throttled.attempts == 1
    assert throttled.due_at >= before + timedelta(seconds=120)
    held = pacing.held_until([("fake:api", 0.0)], timezone.now())
    assert held is not None and held >= before + timedelta(seconds=120)
    other = Delivery.objects.get(employee__email="person1@example.com")
    assert other.attempts == 0 and other.due_at >= before + timedelta(seconds=120)


def test_a_drain_waits_out_a_moments_429_and_sends_the_refused_one_again(paced: Any) -> None:
    paced.interval = 0.01
    factories.employees(3)
    factories.fired(channels=("fake",))
    refusal = TransientError("429", retry_after=1, pace_key="fake:api")
    paced.script["person0@example.com"] = [refusal]
    started = time.monotonic()
    dispatcher = Dispatcher()
    dispatcher.run_until_idle()
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.SENT}
    assert Delivery.objects.get(employee__email="person0@example.com").attempts == 2
    # Nothing went out during the hold: the two others waited for it too.
    assert min(paced.sent_at) >= started + 1.0
    # Counted once each, by how they ended: the refused one was sent on its retry.
    assert outcomes([dispatcher]) == {"sent": 3, "failed": 0, "unknown": 0, "retrying": 0}


def test_an_ordinary_retry_backoff_is_not_waited_for(paced: Any) -> None:
    paced.interval = 0.01
    factories.employees(1)
    factories.fired(channels=("fake",))
    paced.script["person0@example.com"] = [TransientError("connection reset")]
    started = time.monotonic()
    dispatcher = Dispatcher()
    dispatcher.run_until_idle()
    assert time.monotonic() - started < 5
    delivery = Delivery.objects.get()
    assert delivery.state == DeliveryState.PENDING
    assert delivery.due_at >= timezone.now() + timedelta(seconds=10)
    assert outcomes([dispatcher]) == {"sent": 0, "failed": 0, "unknown": 0, "retrying": 1}


def test_a_drain_never_waits_past_its_budget(paced: Any) -> None:
    paced.interval = 0.01
    factories.employees(1)
    factories.fired(channels=("fake",))
    refusal = TransientError("429", retry_after=3, pace_key="fake:api")
    paced.script["person0@example.com"] = [refusal]
    started = time.monotonic()
    Dispatcher().run_until_idle(until=started + 1.0)
    assert time.monotonic() - started < 2.5  # a Celery task's budget, not the Retry-After
    assert Delivery.objects.get().state == DeliveryState.PENDING


def test_a_batch_past_its_budget_puts_its_paced_rest_back_instead_of_waiting(
    paced: Any,
) -> None:
    paced.interval = 0.5
    factories.employees(6)
    factories.fired(channels=("fake",))
    started = time.monotonic()
    Dispatcher().run_until_idle(until=started + 1.0)
    assert time.monotonic() - started < 2.0  # not the 3 s that six slots take
    assert 2 <= len(paced.sent) < 6
    waiting = Delivery.objects.filter(state=DeliveryState.PENDING)
    assert waiting.count() == 6 - len(paced.sent)
    assert all(d.attempts == 0 and d.lease_token is None for d in waiting)


def test_a_stop_while_waiting_for_a_slot_gives_the_row_back_at_once(paced: Any) -> None:
    paced.interval = 5.0
    factories.employees(2)
    factories.fired(channels=("fake",))
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    Dispatcher(stop).run_until_idle()
    assert time.monotonic() - started < 2.0  # not the 5 s its slot was
    assert len(paced.sent) == 1
    waiting = Delivery.objects.get(state=DeliveryState.PENDING)
    assert waiting.attempts == 0 and waiting.lease_token is None


def test_an_inbox_write_is_rolled_back_when_the_lease_was_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    factories.employees(1)
    factories.fired(channels=("inapp",))
    # The outcome finds the row no longer ours (reaped and claimed by another worker).
    monkeypatch.setattr(ledger, "finish_many", lambda *args, **kwargs: set())
    Dispatcher().dispatch_batch()
    assert InboxItem.objects.count() == 0
    delivery = Delivery.objects.get()
    assert delivery.state != DeliveryState.SENT
    # Its inbox write undone, the row goes back to the queue with the attempt uncounted.
    assert (delivery.state, delivery.attempts) == (DeliveryState.PENDING, 0)


def test_an_inbox_item_and_its_sent_state_commit_together() -> None:
    factories.employees(2)
    factories.fired(channels=("inapp",))
    with transaction.atomic():
        Dispatcher().run_until_idle()
    assert InboxItem.objects.count() == 2
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.SENT}
