"""The kept counts equal a fresh GROUP BY of the ledger after every move, whatever the order.

A hypothesis state machine drives the ledger's moves at random — fan-out, claims (some
straight into sending), intents, outcomes (sent, failed, retry), serial rounds, defers,
releases, withdrawals, reaps, holds and releases of holds, retries, settles, cancels, prunes
and folds — and after every step checks the kept counts against the deliveries themselves,
and the kept attempt counts against the attempt history (plus what was pruned of it). It runs
in both passes of ``make test``: SQLite's statements and PostgreSQL's (one CTE per move)
differ, so both are proven.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from bulletin.dispatch import ledger
from bulletin.dispatch.fanout import fan_out
from bulletin.dispatch.ledger import counts, orders
from bulletin.domain.models import (
    Announcement,
    Attempt,
    AttemptOutcome,
    ChannelOptOut,
    Delivery,
    DeliveryState,
    Employee,
    InboxItem,
    Occurrence,
)
from tests import factories

LEASE = timedelta(seconds=60)
CHANNELS = ("email", "inapp")
OUTCOMES = {
    "sent": ledger.Outcome(DeliveryState.SENT, AttemptOutcome.SENT),
    "failed": ledger.Outcome(DeliveryState.FAILED, AttemptOutcome.FAILED, "550 no such user"),
    "retry": ledger.Outcome(DeliveryState.PENDING, AttemptOutcome.RETRY, "451 busy"),
}


class LedgerMoves(RuleBasedStateMachine):
    """Random moves on a small ledger, inside a transaction rolled back at the end."""

    def __init__(self) -> None:
        super().__init__()
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.now = timezone.now()
        self.pruned_attempts: Counter[tuple[str, str]] = Counter()
        self.timed_before = _timed()

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    @initialize()
    def people(self) -> None:
        people = factories.employees(4, prefix=f"p{id(self)}-")
        ChannelOptOut.objects.create(employee=people[0], channel="email")
        self.announcement: Announcement = factories.announcement(now=self.now, channels=CHANNELS)

    def later(self, seconds: int = 1) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now

    def ids(self, data: Any, state: str, **where: Any) -> list[int]:
        found = list(Delivery.objects.filter(state=state, **where).values_list("pk", flat=True))
        return data.draw(st.lists(st.sampled_from(found), unique=True)) if found else []

    def token(self, data: Any, state: str) -> str | None:
        tokens = sorted(
            set(Delivery.objects.filter(state=state).values_list("lease_token", flat=True))
        )
        return data.draw(st.sampled_from(tokens)) if tokens else None

    @rule()
    def fan_out(self) -> None:
        occurrence = Occurrence.objects.create(
            announcement=self.announcement,
            zone="Europe/London",
            fire_at=self.later(60),
            state="planned",
        )
        fan_out(occurrence, self.now)

    @rule(limit=st.integers(1, 6), starting=st.sampled_from([(), ("inapp",), CHANNELS]))
    def claim(self, limit: int, starting: tuple[str, ...]) -> None:
        ledger.claim_rows(ledger.new_token(), limit, self.later(), LEASE, starting)

    @rule(data=st.data())
    def begin(self, data: Any) -> None:
        if token := self.token(data, "claimed"):
            ids = self.ids(data, "claimed", lease_token=token)
            ledger.begin_attempts(ids, token, self.later(), LEASE)

    @rule(data=st.data(), outcome=st.sampled_from(sorted(OUTCOMES)))
    def finish(self, data: Any, outcome: str) -> None:
        if token := self.token(data, "sending"):
            ids = self.ids(data, "sending", lease_token=token)
            result = OUTCOMES[outcome]
            if result.state == DeliveryState.PENDING:
                result = ledger.Outcome(result.state, result.attempt, "451", self.now + LEASE)
            started = self.now
            ledger.finish_many(dict.fromkeys(ids, result), token, self.later(3), started)

    @rule(data=st.data(), outcome=st.sampled_from(sorted(OUTCOMES)))
    def serial_round(self, data: Any, outcome: str) -> None:
        """One round of the serial ledger: some outcomes and some intents, together."""
        sending = self.token(data, "sending")
        claimed = self.token(data, "claimed")
        token = sending or claimed
        if token is None:
            return
        ended = self.ids(data, "sending", lease_token=token)
        starting = self.ids(data, "claimed", lease_token=token)
        began = self.now
        attempted = [ledger.Attempted(pk, OUTCOMES[outcome], began) for pk in ended]
        if OUTCOMES[outcome].state == DeliveryState.PENDING:
            retry = ledger.Outcome(DeliveryState.PENDING, AttemptOutcome.RETRY, "451", began)
            attempted = [ledger.Attempted(pk, retry, began) for pk in ended]
        ledger.SerialLedger(token, LEASE).step(attempted, starting, self.later(2))

    @rule(data=st.data(), kind=st.sampled_from(["defer", "release", "withdraw"]))
    def give_back(self, data: Any, kind: str) -> None:
        state = "sending" if kind == "withdraw" else "claimed"
        if (token := self.token(data, state)) is None:
            return
        ids = self.ids(data, state, lease_token=token)
        if kind == "defer":
            for pk in ids:
                ledger.defer(pk, token, self.now + LEASE, self.later())
        elif kind == "release":
            ledger.release(ids, token, self.later())
        else:
            ledger.withdraw(ids, token, self.later())

    @rule(deduplicating=st.sampled_from([[], ["inapp"], list(CHANNELS)]))
    def reap(self, deduplicating: list[str]) -> None:
        ledger.reap(self.later(int(LEASE.total_seconds()) + 1), deduplicating)

    @rule(data=st.data())
    def hold_and_unhold(self, data: Any) -> None:
        held = Delivery.objects.filter(pk__in=self.ids(data, "pending"))
        orders.hold(held, self.now + LEASE, "weekend", self.later())
        if data.draw(st.booleans()):
            orders.unhold(Delivery.objects.filter(pk__in=self.ids(data, "held")), self.later())

    @rule(data=st.data(), states=st.sampled_from([["failed"], ["failed", "unknown"]]))
    def retry(self, data: Any, states: list[str]) -> None:
        rows = Delivery.objects.filter(pk__in=self.ids(data, states[-1]) + self.ids(data, "failed"))
        orders.retry(rows, states, self.later())

    @rule(data=st.data(), verdict=st.sampled_from(["sent", "failed", "resend"]))
    def settle(self, data: Any, verdict: str) -> None:
        if ids := self.ids(data, "unknown"):
            orders.lock(ids)
            assert orders.settle(ids, verdict, "checked the relay", self.later()) == len(ids)

    @rule()
    def cancel(self) -> None:
        rows = Delivery.objects.filter(occurrence__announcement=self.announcement)
        orders.skip(rows, ["pending", "held"], "announcement cancelled", self.later())

    @rule(data=st.data())
    def prune(self, data: Any) -> None:
        settled = Delivery.objects.filter(state__in=["sent", "failed", "skipped"])
        free = settled.exclude(pk__in=InboxItem.objects.values("delivery_id"))
        found = list(free.values_list("pk", flat=True))
        ids = data.draw(st.lists(st.sampled_from(found), unique=True)) if found else []
        history = Attempt.objects.filter(delivery_id__in=ids)
        for channel, outcome, n in history.values_list("delivery__channel", "outcome").annotate(
            n=Count("pk")
        ):
            self.pruned_attempts[(channel, outcome)] += n
        if ids:
            assert orders.prune(ids)[0] == len(ids)

    @rule()
    def fold(self) -> None:
        counts.fold()

    @invariant()
    def kept_counts_equal_the_ledger(self) -> None:
        assert counts.check() == {}

    @invariant()
    def totals_keep_every_delivery_ever_made(self) -> None:
        made = sum(o.delivery_count or 0 for o in Occurrence.objects.all())
        kept = sum(c.total for c in counts.kept())
        assert kept == made

    @invariant()
    def kept_attempts_equal_the_history_and_what_was_pruned(self) -> None:
        history = Counter(
            {
                (channel, outcome): n
                for channel, outcome, n in Attempt.objects.values_list(
                    "delivery__channel", "outcome"
                ).annotate(n=Count("pk"))
            }
        )
        assert _timed() - self.timed_before == history + self.pruned_attempts


def _timed() -> Counter[tuple[str, str]]:
    found: Counter[tuple[str, str]] = Counter()
    for timing in counts.timings():
        found[(timing.channel, timing.outcome)] += timing.attempts
    return found


@pytest.mark.django_db
def test_the_kept_counts_equal_the_ledger_after_every_random_move() -> None:
    run = settings(
        max_examples=30,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        derandomize=True,
    )(LedgerMoves)
    run.TestCase().runTest()


@pytest.mark.django_db
def test_a_pruned_delivery_leaves_the_ledger_but_stays_in_the_totals_hr_sees() -> None:
    factories.employees(2)
    item = factories.fired()
    token = ledger.new_token()
    claimed = ledger.claim(token, 2, timezone.now(), LEASE)
    ledger.begin_attempts(claimed, token, timezone.now(), LEASE)
    sent = ledger.Outcome(DeliveryState.SENT, AttemptOutcome.SENT)
    ledger.finish_many(dict.fromkeys(claimed, sent), token, timezone.now(), timezone.now())
    orders.prune(claimed[:1])
    assert Delivery.objects.count() == 1
    assert counts.by_state(counts.of_announcements([item.pk])) == {"sent": 2}
    (kept,) = counts.kept()
    assert (kept.live, kept.pruned) == (1, 1)
    assert counts.check() == {}


@pytest.mark.django_db
def test_recount_rebuilds_live_counts_from_the_ledger_and_keeps_the_pruned() -> None:
    factories.employees(3)
    item = factories.fired()
    first = Delivery.objects.order_by("pk").values_list("pk", flat=True)[0]
    orders.skip(Delivery.objects.filter(pk=first), ["pending"], "test", timezone.now())
    orders.prune([first])
    Employee.objects.update(active=True)  # unrelated writes do not matter
    from bulletin.domain.models import DeliveryCount, DeliveryCountChange

    counts.fold()
    DeliveryCount.objects.filter(state="pending").update(live=99)  # drifted by hand
    assert counts.check() != {}
    counts.recount()
    assert counts.check() == {}
    assert counts.by_state(counts.of_announcements([item.pk])) == {"pending": 2, "skipped": 1}
    assert not DeliveryCountChange.objects.exists()


@pytest.mark.django_db
def test_recount_check_names_each_drifted_count_and_exits_1_and_recount_repairs_it() -> None:
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    from bulletin.domain.models import DeliveryCount

    factories.employees(2)
    item = factories.fired()
    out = StringIO()
    call_command("recount", "--check", stdout=out)
    assert out.getvalue().strip() == "delivery counts agree with the ledger"
    counts.fold()
    DeliveryCount.objects.update(live=5)  # as a hand-made fix in SQL might leave them
    out = StringIO()
    with pytest.raises(CommandError, match="1 kept counts differ") as refused:
        call_command("recount", "--check", stdout=out)
    assert refused.value.returncode == 1
    occurrence = Occurrence.objects.get(announcement=item).pk
    assert out.getvalue().strip() == f"occurrence {occurrence} email pending: kept 5, ledger 2"
    call_command("recount", stdout=StringIO())
    assert counts.check() == {}
