"""An audience that reaches nobody is caught before it is sent, with the closest names that
do exist."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

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


def announce(tmp_path: Path, *extra: str) -> str:
    body = tmp_path / "body.md"
    body.write_text("Hi")
    out = io.StringIO()
    call_command(
        "announce", "--title", "T", "--body-file", str(body), "--cron", "0 9 * * *",
        "--tz", "UTC", *extra, stdout=out,
    )  # fmt: skip
    return out.getvalue()


def test_the_command_line_refuses_a_department_nobody_is_in_naming_the_closest(
    tmp_path: Path,
) -> None:
    with pytest.raises(CommandError) as refused:
        announce(tmp_path, "--audience", "department:Salse")
    assert str(refused.value) == (
        "--audience: department 'Salse' matches nobody; did you mean 'Sales'? "
        "(--allow-empty to keep it)"
    )
    assert not Announcement.objects.exists()
    announce(tmp_path, "--audience", "department:Future team", "--allow-empty")
    assert Announcement.objects.get().audience_values == ["Future team"]


def test_hrs_live_audience_count_says_why_nobody_matches(client: Client, ann: Any) -> None:
    client.force_login(ann)
    answer = client.get("/hr/audience/", {"audience_kind": "department", "department": "Legal"})
    assert answer.json()["count"] == 0
    assert answer.json()["problems"] == ["department 'Legal' matches nobody"]
    some = client.get("/hr/audience/", {"audience_kind": "department", "department": "Sales"})
    assert some.json()["count"] == 2 and some.json()["problems"] == []


def test_hrs_form_reports_its_own_problems_and_the_services_in_one_pass(
    client: Client, ann: Any
) -> None:
    client.force_login(ann)
    form = factories.compose_form(title="", channels=[], cron="61 * * * *", repeat="custom")
    answer = client.post("/hr/new/", form)
    assert answer.status_code == 400
    errors = dict(answer.context["form"].errors)
    assert errors["title"] == ["This field is required."]
    assert errors["cron"] == ["invalid cron expression '61 * * * *': bad minute"]
    assert errors["channels"] == ["Choose at least one channel or place."]
    assert set(errors) == {"title", "cron", "channels"}  # nothing said twice, nothing spurious
    assert not Announcement.objects.exists()
