"""Rate limits kept in the database: every worker respects one pace and one backoff."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from bulletin.channels import TRANSPORTS
from bulletin.channels.base import Message, TransientError
from bulletin.channels.fake import FakeTransport
from bulletin.dispatch import leases, pacing
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import Attempt, ChannelPace, Delivery, DeliveryState, InboxItem
from tests import factories

pytestmark = pytest.mark.django_db


class PacedTransport(FakeTransport):
    """A fake channel that asks for one send per minute on one key."""

    def paces(self, message: Message) -> list[tuple[str, float]]:
        return [("fake:room", 60.0)]


@pytest.fixture
def paced(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[PacedTransport]]:
    monkeypatch.setitem(TRANSPORTS, "fake", PacedTransport)
    PacedTransport.reset()
    yield PacedTransport
    PacedTransport.reset()


def test_a_free_key_gives_a_slot_now_and_spaces_the_next() -> None:
    now = timezone.now()
    assert pacing.reserve([("k", 2.0)], now) == now
    assert ChannelPace.objects.get(key="k").next_slot_at == now + timedelta(seconds=2)


def test_a_busy_key_says_when_and_takes_no_slot() -> None:
    now = timezone.now()
    pacing.reserve([("k", 2.0)], now)
    assert pacing.reserve([("k", 2.0), ("other", 1.0)], now) == now + timedelta(seconds=2)
    assert ChannelPace.objects.get(key="other").next_slot_at <= now  # still free


def test_hold_pushes_a_key_out_but_never_pulls_it_in() -> None:
    now = timezone.now()
    pacing.hold("k", now + timedelta(seconds=30))
    pacing.hold("k", now + timedelta(seconds=5))
    assert ChannelPace.objects.get(key="k").next_slot_at == now + timedelta(seconds=30)


def test_deliveries_over_the_pace_wait_without_spending_an_attempt(paced: Any) -> None:
    factories.employees(3)
    factories.fired(channels=("fake",))
    Dispatcher().dispatch_batch()
    assert len(paced.sent) == 1
    waiting = Delivery.objects.filter(state=DeliveryState.PENDING)
    assert waiting.count() == 2
    assert all(d.attempts == 0 and d.due_at > timezone.now() for d in waiting)
    assert Attempt.objects.count() == 1


def test_a_429_holds_the_key_for_every_worker_until_retry_after(paced: Any) -> None:
    factories.employees(2)
    factories.fired(channels=("fake",))
    paced.script["person0@example.com"] = [
        TransientError("429", retry_after=120, pace_key="fake:room")
    ]
    before = timezone.now()
    Dispatcher().dispatch_batch()
    throttled = Delivery.objects.get(employee__email="person0@example.com")
    assert throttled.state == DeliveryState.PENDING and throttled.attempts == 1
    assert throttled.due_at >= before + timedelta(seconds=120)
    assert ChannelPace.objects.get(key="fake:room").next_slot_at >= before + timedelta(seconds=120)
    other = Delivery.objects.get(employee__email="person1@example.com")
    assert other.attempts == 0 and other.due_at >= before + timedelta(seconds=120)


def test_an_inbox_write_is_rolled_back_when_the_lease_was_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    factories.employees(1)
    factories.fired(channels=("inapp",))
    # The outcome finds the row no longer ours (reaped and claimed by another worker).
    monkeypatch.setattr(leases, "finish_many", lambda *args, **kwargs: set())
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
