"""Who an occurrence reaches: a snapshot of the audience, taken in the database at fan-out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

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
    recipients = fan_out(audience_kind="department", audience_values=["Engineering"])
    assert recipients == {"eng0@example.com", "eng1@example.com"}


def test_a_location_audience_reaches_only_that_location(staff: None) -> None:
    assert fan_out(audience_kind="location", audience_values=["Leeds"]) == {
        "ops0@example.com",
        "ops1@example.com",
    }


def test_a_two_department_audience_is_a_rule_resolved_at_each_fan_out(staff: None) -> None:
    factories.employees(2, prefix="sales", department="Sales", location="Leeds")
    # Scheduled now; the occurrence fans out a minute later, after someone joins Operations.
    item = factories.created_earlier(
        audience_kind="department", audience_values=["Engineering", "Operations"]
    )
    assert item.audience_values == ["Engineering", "Operations"]
    factories.employees(1, prefix="joiner", department="Operations", location="Leeds")

    factories.tick_after(item)

    assert recipients_of(item) == {
        "eng0@example.com",
        "eng1@example.com",
        "ops0@example.com",
        "ops1@example.com",
        "joiner0@example.com",
    }
    assert not item.recipients.exists()  # a rule, never turned into a list of people


def test_a_two_location_audience_reaches_anyone_in_either(staff: None) -> None:
    factories.employees(1, prefix="nyc", department="Sales", location="New York")
    factories.employees(1, prefix="paris", department="Sales", location="Paris")
    assert fan_out(audience_kind="location", audience_values=["London", "New York"]) == {
        "eng0@example.com",
        "eng1@example.com",
        "nyc0@example.com",
    }


def test_audience_names_are_trimmed_and_de_duplicated_when_scheduled(staff: None) -> None:
    item = factories.created_earlier(
        audience_kind="department", audience_values=[" Engineering", "Engineering ", "", "Sales"]
    )
    item.refresh_from_db()
    assert item.audience_values == ["Engineering", "Sales"]


@pytest.mark.parametrize(
    ("kind", "names", "words"),
    [
        pytest.param("department", [], ["at least one department"], id="no-department"),
        pytest.param("location", ["  ", ""], ["at least one location"], id="blank-locations"),
        pytest.param("department", ["x" * 101], ["longer than 100"], id="too-long"),
        pytest.param("department", "Sales", ["list"], id="not-a-list"),
    ],
)
def test_a_department_or_location_audience_without_good_names_is_refused(
    kind: str, names: Any, words: list[str]
) -> None:
    with pytest.raises(ValidationError) as caught:
        factories.announcement(now=timezone.now(), audience_kind=kind, audience_values=names)
    errors = caught.value.message_dict
    assert list(errors) == ["audience_values"]
    for word in words:
        assert word in " ".join(errors["audience_values"])
    assert not Announcement.objects.exists()


def test_names_are_dropped_from_an_audience_that_takes_none() -> None:
    item = factories.announcement(
        now=timezone.now(), audience_kind="all", audience_values=["Sales"]
    )
    item.refresh_from_db()
    assert item.audience_values == []


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
    fan_out(audience_kind="department", audience_values=["Operations"], channels=("email", "fake"))
    keys = [d.idempotency_key for d in Delivery.objects.all()]
    assert len(keys) == len(set(keys)) == 4
