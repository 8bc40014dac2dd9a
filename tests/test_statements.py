"""On PostgreSQL, dispatch's repeated statements are prepared once per connection and reused
batch after batch; turned off (for a pooler that loses them), nothing is prepared."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from django.db import IntegrityError, connection

from bulletin import conf
from bulletin.dispatch.ledger import cursors
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import Delivery, DeliveryState
from tests import factories

pytestmark = [pytest.mark.scale_out, pytest.mark.django_db(transaction=True)]


def runs_of_prepared(containing: str) -> dict[str, int]:
    """This session's prepared statements whose text contains ``containing``: name → runs."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, generic_plans + custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE %s",
            [f"%{containing}%"],
        )
        return dict(cursor.fetchall())


def runs_since(before: dict[str, int], now: dict[str, int]) -> int:
    return sum(runs - before.get(name, 0) for name, runs in now.items())


def dispatch_in_batches_of_two(settings: Any, channel: str, prepared: bool = True) -> None:
    settings.BULLETIN = replace(conf.load({}), batch_size=2, prepared_statements=prepared)
    factories.employees(6)
    factories.fired(channels=(channel,))
    connection.ensure_connection()  # the session whose statements are counted
    Dispatcher().run_until_idle()
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.SENT}


def test_the_claim_and_the_outcomes_are_prepared_once_then_run_every_batch(
    settings: Any,
) -> None:
    claims, outcomes = runs_of_prepared("SKIP LOCKED"), runs_of_prepared("INSERT INTO bulletin_a")
    dispatch_in_batches_of_two(settings, "inapp")
    # Three batches of two, and the claim that found nothing left.
    assert runs_since(claims, runs_of_prepared("SKIP LOCKED")) == 4
    assert runs_since(outcomes, runs_of_prepared("INSERT INTO bulletin_a")) == 3


def test_a_serial_channels_intents_and_outcomes_are_prepared_too(settings: Any) -> None:
    intents = runs_of_prepared("attempts = attempts + 1")
    dispatch_in_batches_of_two(settings, "email")
    assert runs_since(intents, runs_of_prepared("attempts = attempts + 1")) == 6


def test_turned_off_dispatch_prepares_nothing(settings: Any) -> None:
    before = runs_of_prepared("bulletin_")
    dispatch_in_batches_of_two(settings, "inapp", prepared=False)
    assert runs_of_prepared("bulletin_") == before


def test_a_failing_prepared_statement_raises_djangos_error(settings: Any) -> None:
    dispatch_in_batches_of_two(settings, "inapp")
    delivery = Delivery.objects.first()
    assert delivery is not None
    with pytest.raises(IntegrityError), cursors.cursor() as cursor:
        cursor.execute(
            "UPDATE bulletin_delivery SET channel = %s WHERE id = %s", [None, delivery.pk]
        )
    assert Delivery.objects.get(pk=delivery.pk).channel == "inapp"
