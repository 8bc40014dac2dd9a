"""Who an occurrence reaches: a snapshot of the audience, taken in the database at fan-out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine

from bulletin.dispatch.planning import tick
from bulletin.domain.models import Announcement, Delivery, Employee
from tests import factories

pytestmark = pytest.mark.django_db


def fan_out(**fields: Any) -> set[str]:
    return recipients_of(factories.fired(**fields))


def recipients_of(item: Announcement) -> set[str]:
    return set(
        Delivery.objects.filter(occurrence__announcement=item).values_list(
            "employee__email", flat=True
        )
    )


@pytest.fixture
def staff() -> None:
    factories.employees(2, prefix="eng", department="Engineering", location="London")
    factories.employees(2, prefix="ops", department="Operations", location="Leeds")
    factories.employees(1, prefix="gone", department="Engineering", active=False)


def test_everyone_means_every_active_employee(staff: None) -> None:
    assert fan_out() == {f"{p}{n}@example.com" for p in ("eng", "ops") for n in (0, 1)}


def test_a_department_audience_reaches_only_that_department(staff: None) -> None:
    recipients = fan_out(audience_kind="department", audience_value="Engineering")
    assert recipients == {"eng0@example.com", "eng1@example.com"}


def test_a_location_audience_reaches_only_that_location(staff: None) -> None:
    assert fan_out(audience_kind="location", audience_value="Leeds") == {
        "ops0@example.com",
        "ops1@example.com",
    }


def test_an_explicit_list_reaches_exactly_the_chosen_active_people(staff: None) -> None:
    item = factories.created_earlier(audience_kind="list")
    chosen = Employee.objects.filter(
        email__in=["eng1@example.com", "ops0@example.com", "gone0@example.com"]
    )
    item.recipients.set(chosen)
    with time_machine.travel(item.created_at + timedelta(seconds=60), tick=False):
        tick()
    assert recipients_of(item) == {"eng1@example.com", "ops0@example.com"}


def test_each_channel_is_its_own_delivery_with_its_own_key(staff: None, monkeypatch: Any) -> None:
    from bulletin.channels import TRANSPORTS
    from bulletin.channels.fake import FakeTransport

    monkeypatch.setitem(TRANSPORTS, "fake", FakeTransport)
    fan_out(audience_kind="department", audience_value="Operations", channels=("email", "fake"))
    keys = [d.idempotency_key for d in Delivery.objects.all()]
    assert len(keys) == len(set(keys)) == 4
