"""A deliberate retry (HR's "retry failed", the API's retry action, ``bulletin settle
--resend``) starts a fresh retry budget, against a real SMTP server on loopback: a transient
failure after it is retried again, and the attempt history before it is kept."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from bulletin import conf
from bulletin.dispatch import lifecycle
from bulletin.dispatch.sender import Dispatcher
from bulletin.dispatch.settling import settle
from bulletin.domain.models import Announcement, Attempt, Delivery, DeliveryState
from tests import factories
from tests.harness import SmtpSink

pytestmark = pytest.mark.django_db

BUSY = "451 4.3.0 Mail system busy, try later"


def allow(settings: Any, attempts: int, backoff: int) -> None:
    settings.BULLETIN = replace(
        conf.load({}), max_attempts=attempts, retry_base_seconds=backoff, retry_max_seconds=backoff
    )


def history(delivery: Delivery) -> list[tuple[int, str]]:
    return list(delivery.attempt_log.order_by("number").values_list("number", "outcome"))


def retry_failed(item: Announcement, delivery: Delivery, by: Any) -> None:
    assert lifecycle.retry(item, by) == 1


def retry_on_the_hr_screen(item: Announcement, delivery: Delivery, by: Any) -> None:
    client = Client()
    client.force_login(by)
    assert client.post(f"/hr/{item.pk}/retry/").status_code == 302
    assert Delivery.objects.get(pk=delivery.pk).state == DeliveryState.PENDING


def retry_through_the_api(item: Announcement, delivery: Delivery, by: Any) -> None:
    from tests.test_api import api_for

    answer = api_for(by).post(f"/announcements/{item.pk}/retry", {})
    assert answer.status_code == 200 and answer.json()["retried"] == 1


def resend_unknown(item: Announcement, delivery: Delivery, by: Any) -> None:
    # As if its last try had been interrupted and a person found it never arrived.
    factories.put(Delivery.objects.filter(pk=delivery.pk), state=DeliveryState.UNKNOWN)
    assert settle([delivery.pk], "resend", "not in the relay's log") == 1


@pytest.mark.parametrize(
    "deliberately_retry",
    [retry_failed, retry_on_the_hr_screen, retry_through_the_api, resend_unknown],
)
def test_a_deliberate_retry_gets_a_fresh_budget_and_keeps_the_attempt_history(
    settings: Any,
    smtp_settings: SmtpSink,
    ann: Any,
    deliberately_retry: Callable[[Announcement, Delivery, Any], None],
) -> None:
    factories.employees(1)
    item = factories.fired()
    allow(settings, attempts=2, backoff=0)  # no backoff: the drain spends the budget at once
    smtp_settings.data_reply = BUSY
    Dispatcher().run_until_idle()
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts) == (DeliveryState.FAILED, 2)

    deliberately_retry(item, delivery, ann)
    allow(settings, attempts=2, backoff=60)  # now a retry waits: it stays visible as pending
    Dispatcher().run_until_idle()  # the server is still busy: one more 451

    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.PENDING, delivery.last_error
    assert history(delivery) == [(1, "retry"), (2, "retry"), (3, "retry")]

    smtp_settings.data_reply = None
    Delivery.objects.filter(pk=delivery.pk).update(due_at=timezone.now())  # its backoff is over
    Dispatcher().run_until_idle()
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.SENT
    assert [number for number, _ in history(delivery)] == [1, 2, 3, 4]
    assert len(smtp_settings.received) == 1


def test_a_fresh_budget_still_ends_when_it_is_spent(
    settings: Any, smtp_settings: SmtpSink, ann: Any
) -> None:
    factories.employees(1)
    item = factories.fired()
    allow(settings, attempts=2, backoff=0)
    smtp_settings.data_reply = BUSY
    Dispatcher().run_until_idle()
    lifecycle.retry(item, ann)
    Dispatcher().run_until_idle()
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts) == (DeliveryState.FAILED, 4)
    assert delivery.last_error.startswith("gave up:")
    assert Attempt.objects.filter(delivery=delivery).count() == 4
