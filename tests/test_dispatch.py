"""Claims, leases, fencing, retries and recovery, in-process against the test database.

The fake transport stands in for a channel here because these tests are about state changes;
the real-server proofs are in test_email.py, test_overlap.py and test_crash.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from bulletin import conf
from bulletin.channels import TRANSPORTS
from bulletin.channels.base import AmbiguousError, PermanentError, TransientError
from bulletin.channels.fake import FakeTransport
from bulletin.dispatch import ledger
from bulletin.dispatch.planning import tick
from bulletin.dispatch.retry import RetryPolicy
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import Attempt, AttemptOutcome, Delivery, DeliveryState
from tests import factories

pytestmark = pytest.mark.django_db

LEASE = timedelta(seconds=60)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setitem(TRANSPORTS, "fake", FakeTransport)
    FakeTransport.reset()
    yield FakeTransport
    FakeTransport.reset()


def due_deliveries(count: int, channel: str = "fake") -> list[Delivery]:
    """``count`` pending deliveries of one occurrence that fired a minute ago."""
    factories.employees(count)
    factories.fired(channels=(channel,))
    return list(Delivery.objects.order_by("pk"))


def states() -> dict[str, int]:
    found: dict[str, int] = {}
    for delivery in Delivery.objects.all():
        found[delivery.state] = found.get(delivery.state, 0) + 1
    return found


def test_a_claim_is_won_by_exactly_one_token(fake: Any) -> None:
    due_deliveries(5)
    now = timezone.now()
    first = ledger.claim("a" * 32, 10, now, LEASE)
    second = ledger.claim("b" * 32, 10, now, LEASE)
    assert len(first) == 5 and second == []
    assert set(Delivery.objects.values_list("lease_token", flat=True)) == {"a" * 32}


def test_claims_respect_the_batch_limit_and_due_time(fake: Any) -> None:
    deliveries = due_deliveries(5)
    Delivery.objects.filter(pk=deliveries[0].pk).update(due_at=timezone.now() + LEASE)
    claimed = ledger.claim(ledger.new_token(), 3, timezone.now(), LEASE)
    assert len(claimed) == 3 and deliveries[0].pk not in claimed


def test_dispatch_sends_each_delivery_once_and_records_an_attempt(fake: Any) -> None:
    due_deliveries(4)
    assert Dispatcher().run_until_idle() == 4
    assert Dispatcher().run_until_idle() == 0
    assert states() == {"sent": 4}
    assert sorted(m.idempotency_key for m in fake.sent) == sorted(
        d.idempotency_key for d in Delivery.objects.all()
    )
    assert Attempt.objects.filter(outcome=AttemptOutcome.SENT, number=1).count() == 4


def test_message_is_personalised_and_the_html_is_sanitised(fake: Any) -> None:
    factories.employees(1)
    factories.fired(
        channels=("fake",),
        body="Hi {{ first_name }} <script>alert(1)</script> [x](javascript:alert(1))",
    )
    Dispatcher().run_until_idle()
    (message,) = fake.sent
    assert message.text.startswith("Hi Person ")
    assert "<script" not in message.html and "&lt;script&gt;" in message.html
    assert 'href="javascript' not in message.html
    assert "Hi Person" in message.html


def test_an_outcome_is_not_recorded_once_the_lease_is_lost(fake: Any) -> None:
    (delivery,) = due_deliveries(1)
    now = timezone.now()
    token = ledger.new_token()
    ledger.claim(token, 1, now, LEASE)
    assert ledger.begin_attempt(delivery.pk, token, now, LEASE) == 1
    # The lease expires mid-send and the reaper settles the row; the slow worker then reports.
    ledger.reap(now + 2 * LEASE, deduplicating=[])
    sent = ledger.Outcome(DeliveryState.SENT, AttemptOutcome.SENT)
    assert ledger.finish(delivery.pk, token, sent, now + 2 * LEASE, now) is False
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.UNKNOWN


def test_a_worker_that_lost_its_claim_does_not_start_sending(fake: Any) -> None:
    (delivery,) = due_deliveries(1)
    now = timezone.now()
    stale = ledger.new_token()
    ledger.claim(stale, 1, now, LEASE)
    ledger.reap(now + 2 * LEASE, deduplicating=[])
    fresh = ledger.new_token()
    assert ledger.claim(fresh, 1, now + 2 * LEASE, LEASE) == [delivery.pk]
    assert ledger.begin_attempt(delivery.pk, stale, now + 2 * LEASE, LEASE) is None
    assert ledger.begin_attempt(delivery.pk, fresh, now + 2 * LEASE, LEASE) == 1


def test_expired_claim_that_never_sent_goes_back_to_the_queue(fake: Any) -> None:
    due_deliveries(3)
    now = timezone.now()
    ledger.claim(ledger.new_token(), 10, now, LEASE)
    reaped = ledger.reap(now + 2 * LEASE, deduplicating=[])
    assert len(reaped.requeued) == 3 and reaped.unknown == []
    assert states() == {"pending": 3}
    assert Attempt.objects.count() == 0


def test_expired_send_on_a_deduplicating_channel_is_resent_with_the_same_key(fake: Any) -> None:
    (delivery,) = due_deliveries(1)
    now = timezone.now()
    token = ledger.new_token()
    ledger.claim(token, 1, now, LEASE)
    ledger.begin_attempt(delivery.pk, token, now, LEASE)
    reaped = ledger.reap(now + 2 * LEASE, deduplicating=["fake"])
    assert reaped.resent == [delivery.pk]
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.PENDING
    assert Attempt.objects.get().outcome == AttemptOutcome.INTERRUPTED


def test_transient_errors_back_off_then_succeed(fake: Any) -> None:
    (delivery,) = due_deliveries(1)
    fake.script["person0@example.com"] = [TransientError("421 try later")]
    Dispatcher().run_until_idle()
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.PENDING and delivery.attempts == 1
    assert delivery.due_at > timezone.now() + timedelta(seconds=10)  # backed off, not hot-looped
    assert "421" in delivery.last_error
    with time_machine.travel(delivery.due_at + timedelta(seconds=1), tick=False):
        Dispatcher().run_until_idle()
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.SENT and delivery.attempts == 2
    assert [a.outcome for a in Attempt.objects.order_by("number")] == ["retry", "sent"]


def test_permanent_error_fails_at_once_without_retrying(fake: Any) -> None:
    (delivery,) = due_deliveries(1)
    fake.script["person0@example.com"] = [PermanentError("550 no such user")]
    Dispatcher().run_until_idle()
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == (DeliveryState.FAILED, 1)
    assert fake.sent == []


def test_ambiguous_error_on_a_non_deduplicating_channel_becomes_unknown(fake: Any) -> None:
    (delivery,) = due_deliveries(1)
    fake.script["person0@example.com"] = [AmbiguousError("connection reset after DATA")]
    Dispatcher().run_until_idle()
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.UNKNOWN
    assert Dispatcher().run_until_idle() == 0


def test_a_row_that_keeps_raising_is_retried_then_failed_without_stopping_the_worker(
    fake: Any, settings: Any
) -> None:
    due_deliveries(3)
    settings.BULLETIN = replace(conf.load({}), max_attempts=3)
    fake.script["person1@example.com"] = [RuntimeError("bug")] * 3
    moment = timezone.now()
    for _ in range(3):
        with time_machine.travel(moment, tick=False):
            Dispatcher().run_until_idle()
        moment += timedelta(hours=2)
    assert states() == {"sent": 2, "failed": 1}
    failed = Delivery.objects.get(state=DeliveryState.FAILED)
    assert failed.attempts == 3 and "gave up" in failed.last_error


def test_retry_policy_backs_off_exponentially_with_bounded_jitter() -> None:
    policy = RetryPolicy(max_attempts=4, base_seconds=10, max_seconds=60)
    assert [policy.delay(n, rand=lambda: 0.0).total_seconds() for n in (1, 2, 3, 4, 5)] == [
        5,
        10,
        20,
        30,
        30,
    ]
    assert [policy.delay(n, rand=lambda: 1.0).total_seconds() for n in (1, 2, 3)] == [10, 20, 40]
    assert not policy.gives_up(3) and policy.gives_up(4)


def test_graceful_stop_releases_claimed_deliveries_it_did_not_attempt(fake: Any) -> None:
    due_deliveries(3)
    dispatcher = Dispatcher()
    dispatcher.stop.set()
    assert dispatcher.dispatch_batch() == 3
    assert states() == {"pending": 3}
    assert Delivery.objects.filter(lease_token__isnull=False).count() == 0


def test_fan_out_twice_inserts_nothing_new(fake: Any) -> None:
    from bulletin.dispatch.fanout import fan_out
    from bulletin.domain.models import Occurrence

    due_deliveries(5)
    occurrence = Occurrence.objects.get()
    assert fan_out(occurrence, datetime.now(UTC)) == 5
    assert Delivery.objects.count() == 5


def test_the_unique_constraint_refuses_a_second_copy_of_a_fanned_out_audience(fake: Any) -> None:
    from django.db import IntegrityError, transaction

    from bulletin.dispatch.fanout import _insert_rows
    from bulletin.domain.models import Employee, Occurrence

    due_deliveries(2)
    occurrence = Occurrence.objects.select_related("announcement").get()
    with pytest.raises(IntegrityError), transaction.atomic():
        _insert_rows(
            Employee.objects.all(),
            occurrence,
            "fake",
            None,
            timezone.now(),
            DeliveryState.PENDING,
            "",
        )
    assert Delivery.objects.count() == 2


def test_fan_out_query_count_does_not_grow_with_the_audience(
    fake: Any, django_assert_max_num_queries: Any
) -> None:
    from bulletin.dispatch.fanout import fan_out
    from bulletin.domain.models import Occurrence, OccurrenceState

    due_deliveries(1)
    factories.employees(2000, prefix="more")
    factories.forget(Delivery.objects)
    Occurrence.objects.update(state=OccurrenceState.PLANNED)
    occurrence = Occurrence.objects.select_related("announcement").get()
    with django_assert_max_num_queries(8):
        assert fan_out(occurrence, datetime.now(UTC)) == 2001


def test_cancelling_skips_pending_deliveries_and_plans_nothing_more(fake: Any) -> None:
    from bulletin.dispatch.announcements import cancel
    from bulletin.domain.models import Announcement

    due_deliveries(3)
    item = Announcement.objects.get()
    cancel(item)
    assert Dispatcher().run_until_idle() == 0
    assert states() == {"skipped": 3}
    assert fake.sent == []
    item.refresh_from_db()
    assert item.next_fire_at is None
    tick()
    assert Delivery.objects.count() == 3


def test_a_slow_batch_renews_the_lease_on_what_it_has_not_sent_yet(
    fake: Any, settings: Any
) -> None:
    settings.BULLETIN = replace(conf.load({}), lease_seconds=30)
    due_deliveries(3)
    moment = timezone.now()
    expiries: list[object] = []

    class SlowTransport(FakeTransport):
        def send(self, message: Any) -> None:
            nonlocal moment
            super().send(message)
            moment += timedelta(seconds=20)  # each send takes 20 s of a 30 s lease
            traveller.move_to(moment)
            last = Delivery.objects.order_by("pk").last()
            expiries.append(last.lease_expires_at if last else None)

    TRANSPORTS["fake"] = SlowTransport
    with time_machine.travel(moment, tick=False) as traveller:
        Dispatcher().dispatch_batch()
    assert states() == {"sent": 3}
    # The last row was still claimed after 40 s: its lease had been pushed past that point.
    assert expiries[1] is not None and expiries[1] > moment - timedelta(seconds=20)
