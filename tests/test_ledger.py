"""The serial channels' rounds: each one transaction of outcomes (with their history rows) and
the next intents, fenced by the lease token, and all or nothing — both inside a caller's
transaction (a savepoint) and in a transaction of its own."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone

from bulletin.dispatch import ledger as leases
from bulletin.dispatch.ledger import Attempted, SerialLedger
from bulletin.domain.models import (
    Attempt,
    AttemptOutcome,
    Delivery,
    DeliveryState,
    Tallied,
    Tally,
)
from tests import factories

LEASE = timedelta(seconds=60)
SENT = leases.Outcome(DeliveryState.SENT, AttemptOutcome.SENT)


def claimed(count: int) -> tuple[str, list[int]]:
    factories.employees(count)
    factories.fired()
    token = leases.new_token()
    return token, leases.claim(token, count, timezone.now(), LEASE)


def tally(name: Tallied) -> int:
    row = Tally.objects.filter(name=name.value).first()
    return row.total if row else 0


@pytest.mark.django_db
def test_a_round_records_the_ended_with_history_and_begins_the_next_together() -> None:
    token, (first, second, third) = claimed(3)
    ledger = SerialLedger(token, LEASE)
    began = timezone.now()
    assert ledger.step([], [first, second], began) == {first: 1, second: 1}
    ended = timezone.now()
    assert ledger.step([Attempted(first, SENT, began)], [third], ended) == {third: 1}
    rows = {d.pk: d for d in Delivery.objects.all()}
    assert rows[first].state == DeliveryState.SENT and rows[first].lease_token is None
    assert rows[first].sent_at == ended
    assert rows[second].state == rows[third].state == DeliveryState.SENDING
    (history,) = Attempt.objects.all()
    assert (history.delivery_id, history.number, history.outcome) == (first, 1, "sent")
    assert (history.started_at, history.finished_at) == (began, ended)


@pytest.mark.django_db
def test_a_retry_moves_the_delivery_back_to_the_queue_at_its_time() -> None:
    token, (only,) = claimed(1)
    ledger = SerialLedger(token, LEASE)
    began = timezone.now()
    ledger.step([], [only], began)
    later = began + timedelta(minutes=5)
    retry = leases.Outcome(DeliveryState.PENDING, AttemptOutcome.RETRY, "451 busy", later)
    ledger.step([Attempted(only, retry, began)], [], timezone.now())
    row = Delivery.objects.get()
    assert (row.state, row.due_at, row.last_error, row.sent_at) == (
        "pending",
        later,
        "451 busy",
        None,
    )
    assert Attempt.objects.get().outcome == AttemptOutcome.RETRY


@pytest.mark.django_db
def test_a_lost_lease_refuses_the_outcome_and_the_intent_and_counts_both() -> None:
    token, (sending, waiting) = claimed(2)
    ledger = SerialLedger(token, LEASE)
    began = timezone.now()
    ledger.step([], [sending], began)
    leases.reap(began + 2 * LEASE, deduplicating=[])  # the lease ran out; both were settled
    begun = ledger.step([Attempted(sending, SENT, began)], [waiting], began + 2 * LEASE)
    assert begun == {}
    states = dict(Delivery.objects.values_list("pk", "state"))
    assert states == {sending: DeliveryState.UNKNOWN, waiting: DeliveryState.PENDING}
    assert tally(Tallied.OUTCOME_AFTER_LOST_LEASE) == 1
    assert tally(Tallied.INTENT_AFTER_LOST_LEASE) == 1


def a_round_that_fails_half_way_writes_nothing() -> None:
    token, (first, second) = claimed(2)
    ledger = SerialLedger(token, LEASE)
    began = timezone.now()
    ledger.step([], [first], began)
    # The history row's key is taken already: the round's second statement fails.
    Attempt.objects.create(delivery_id=first, number=1, started_at=began)
    with pytest.raises(IntegrityError):
        ledger.step([Attempted(first, SENT, began)], [second], timezone.now())
    states = dict(Delivery.objects.values_list("pk", "state"))
    assert states == {first: DeliveryState.SENDING, second: DeliveryState.CLAIMED}
    # And the connection is fit for the next round.
    Attempt.objects.all().delete()
    assert ledger.step([Attempted(first, SENT, began)], [second], timezone.now()) == {second: 1}


@pytest.mark.django_db
def test_a_round_that_fails_half_way_inside_a_callers_transaction_writes_nothing() -> None:
    a_round_that_fails_half_way_writes_nothing()


@pytest.mark.django_db(transaction=True)
def test_a_round_that_fails_half_way_in_its_own_transaction_writes_nothing() -> None:
    a_round_that_fails_half_way_writes_nothing()
