"""An audience that reaches nobody is caught before it is sent, with the closest names that
do exist."""

from __future__ import annotations

import pytest

from bulletin.dispatch.audience import unmatched
from bulletin.domain.models import Announcement, AudienceKind, Employee
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def staff() -> None:
    factories.employees(2, department="Sales", location="Leeds")
    factories.employees(1, prefix="m", department="Marketing", location="London")
    factories.employees(1, prefix="gone", department="Legal", location="Leeds", active=False)


def problems(kind: str, *names: str) -> list[str]:
    return unmatched(Announcement(audience_kind=kind, audience_values=list(names)))


@pytest.mark.parametrize(
    ("kind", "names", "expected"),
    [
        (
            AudienceKind.DEPARTMENT,
            ["Salse"],
            ["department 'Salse' matches nobody; did you mean 'Sales'?"],
        ),
        (
            AudienceKind.DEPARTMENT,
            ["sales"],
            ["department 'sales' matches nobody; did you mean 'Sales'?"],
        ),
        (AudienceKind.DEPARTMENT, ["Sales", "Finance"], ["department 'Finance' matches nobody"]),
        (
            AudienceKind.LOCATION,
            ["Londn"],
            ["location 'Londn' matches nobody; did you mean 'London'?"],
        ),
        (AudienceKind.DEPARTMENT, ["Sales"], []),
        (AudienceKind.LOCATION, ["Leeds", "London"], []),
        (AudienceKind.ALL, [], []),
    ],
)
def test_a_name_that_matches_nobody_is_named_with_the_closest_that_exist(
    kind: str, names: list[str], expected: list[str]
) -> None:
    assert problems(kind, *names) == expected


def test_a_department_of_only_inactive_people_matches_nobody() -> None:
    assert problems(AudienceKind.DEPARTMENT, "Legal") == ["department 'Legal' matches nobody"]


def test_everyone_with_nobody_active_matches_nobody() -> None:
    Employee.objects.update(active=False)
    assert problems(AudienceKind.ALL) == ["this audience matches no active employee"]


def test_several_close_names_are_offered_together() -> None:
    factories.employees(1, prefix="s2", department="Sales UK")
    said = problems(AudienceKind.DEPARTMENT, "Sale")
    assert said == ["department 'Sale' matches nobody; did you mean 'Sales' or 'Sales UK'?"]
