"""The employee import reports every problem of a file in one pass: the header's (missing or
repeated columns), each misshapen row's and each bad cell's, together, sorted by line, each with
its column where it is about one cell; at most the first 1,000 by line, then how many more. The
command line, HR's import screen and the HRIS bulk API all say so, and nothing is imported.

Problems that make the whole file unreadable (not UTF-8, a NUL byte, …) still stop at once:
the last test here.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from bulletin.domain.models import ApiToken, Employee, Location
from bulletin.domain.roles import ADMINISTRATOR
from bulletin.interfaces.api.auth import SCOPES
from bulletin.interfaces.roster import MAX_PROBLEMS, ImportRejected, import_employees
from tests import factories
from tests.harness import Installation

HEADER = "email,name,department,location,timezone"

# A bad email on line 2, an extra cell on line 3, an unknown zone on line 4.
MIXED = (
    f"{HEADER}\n"
    "not-an-email,Ann,Eng,London,UTC\n"
    "bob@example.com,Bob,Eng,London,UTC,extra\n"
    "cy@example.com,Cy,Eng,London,Mars/Base\n"
)
MIXED_PROBLEMS = [
    (2, "email", "email 'not-an-email' is not a valid email address"),
    (3, None, "6 values, but the header has 5 columns"),
    (4, "timezone", "timezone: unknown time zone 'Mars/Base'"),
]


def problems(text: str) -> tuple[list[tuple[int, str | None, str]], ImportRejected]:
    """What importing ``text`` reports, as (line, column, message); fails if it imports."""
    with pytest.raises(ImportRejected) as info:
        import_employees(text.encode())
    return [(e.line, e.column, e.message) for e in info.value.errors], info.value


def assert_reported(found: list[tuple[int, str | None, str]], expected: list[Any]) -> None:
    assert len(found) == len(expected), found
    for (line, column, message), (want_line, want_column, start) in zip(
        found, expected, strict=True
    ):
        assert (line, column) == (want_line, want_column)
        assert message.startswith(start), message


def nothing_imported() -> bool:
    return not Employee.objects.exists() and not Location.objects.exists()


# --- one pass, every problem -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_bad_email_a_misshapen_row_and_a_bad_zone_are_reported_together_by_line() -> None:
    found, rejection = problems(MIXED)

    assert_reported(found, MIXED_PROBLEMS)
    assert str(rejection) == "3 bad row(s); nothing was imported"
    assert nothing_imported()


@pytest.mark.django_db
def test_a_missing_column_and_a_bad_email_are_each_reported_once() -> None:
    text = (
        "email,name,department,timezone\n"
        "ann@example.com,Ann,Eng,UTC\n"
        "not-an-email,Bob,Eng,Europe/London\n"
        "cy@example.com,Cy,Eng,\n"  # no zone and no location column: not one more problem
        "dee@example.com,Dee,Eng,Europe/Paris\n"
    )

    found, rejection = problems(text)

    assert_reported(
        found,
        [(1, None, "missing column(s): location"), (3, "email", "email 'not-an-email' is not")],
    )
    assert str(rejection) == "a problem with the columns and 1 bad row(s); nothing was imported"
    assert nothing_imported()


@pytest.mark.django_db
def test_a_missing_email_column_still_checks_the_other_cells_without_inventing_duplicates() -> None:
    text = "name,department,location,timezone\nAnn,Eng,London,UTC\nAnn,Eng,London,Mars/Base\n"

    found, _ = problems(text)

    assert_reported(
        found,
        [(1, None, "missing column(s): email"), (3, "timezone", "timezone: unknown time zone")],
    )
    assert nothing_imported()


@pytest.mark.django_db
def test_a_repeated_column_is_reported_and_the_rows_are_checked_by_its_first_copy() -> None:
    text = f"{HEADER},timezone\nann@example.com,Ann,Eng,London,Mars/Base,UTC\n"

    found, _ = problems(text)

    assert_reported(
        found,
        [(1, None, "repeated column(s): timezone"), (2, "timezone", "timezone: unknown time")],
    )
    assert nothing_imported()


@pytest.mark.django_db
def test_every_bad_cell_of_one_row_is_reported_each_with_its_column() -> None:
    text = f"{HEADER},active,away_until\nnope,,Eng,London,Mars/Base,maybe,2027-02-30\n"

    found, _ = problems(text)

    assert [(line, column) for line, column, _ in found] == [
        (2, "email"),
        (2, "name"),
        (2, "timezone"),
        (2, "active"),
        (2, "away_until"),
    ]
    assert nothing_imported()


@pytest.mark.django_db
def test_problems_found_only_after_the_last_row_are_listed_in_line_order() -> None:
    # Line 2's missing zone is known only once every row has said what London's zone is.
    text = (
        f"{HEADER}\n"
        "ann@example.com,Ann,Eng,Nowhere,\n"
        "not-an-email,Bob,Eng,London,UTC\n"
        "cy@example.com,Cy,Eng,London,UTC,extra\n"
    )

    found, _ = problems(text)

    assert [(line, column) for line, column, _ in found] == [
        (2, "timezone"),
        (3, "email"),
        (4, None),
    ]


# --- the cap ----------------------------------------------------------------------------------


def wholly_wrong(rows: int) -> str:
    """A file whose every row has a bad email, but whose first row's problem is found last."""
    bad = (f"bad{n},Person {n},Eng,London,UTC" for n in range(rows - 1))
    return "\n".join([HEADER, "ann@example.com,Ann,Eng,Nowhere,", *bad]) + "\n"


@pytest.mark.django_db
def test_a_wholly_wrong_file_lists_the_first_thousand_problems_by_line_and_counts_the_rest() -> (
    None
):
    found, rejection = problems(wholly_wrong(MAX_PROBLEMS + 250))

    assert [line for line, _, _ in found] == list(range(2, MAX_PROBLEMS + 2))
    assert found[0][1] == "timezone"  # found after the last row, yet first by line
    assert rejection.more == 250 and rejection.total == MAX_PROBLEMS + 250
    assert rejection.more_text() == "…and 250 more problems (only the first 1,000 are listed)"
    assert nothing_imported()


@pytest.mark.django_db
def test_the_command_prints_the_capped_list_then_how_many_more_then_the_summary(
    tmp_path: Path,
) -> None:
    path = tmp_path / "staff.csv"
    path.write_text(wholly_wrong(MAX_PROBLEMS + 3), encoding="utf-8")
    err = io.StringIO()

    with pytest.raises(CommandError, match=r"^1003 bad row\(s\); nothing was imported$"):
        call_command("import_employees", str(path), stdout=io.StringIO(), stderr=err)

    lines = err.getvalue().splitlines()
    assert len(lines) == MAX_PROBLEMS + 1
    assert lines[0].startswith(f"{path}:line 2: timezone is empty")
    assert lines[-1] == f"{path}:…and 3 more problems (only the first 1,000 are listed)"
    assert nothing_imported()


# --- the command line, HR's screen, the API ---------------------------------------------------


def test_the_command_prints_one_line_per_problem_then_the_summary_and_fails(
    installation: Installation,
) -> None:
    path = installation.directory / "staff.csv"
    path.write_text(MIXED, encoding="utf-8")

    result = installation.run("import_employees", str(path), check=False)

    assert result.returncode != 0 and result.stdout == ""
    assert "Traceback" not in result.stderr
    *listed, summary = result.stderr.strip().splitlines()
    assert [line.removeprefix(f"{path}:") for line in listed] == [
        "line 2: email 'not-an-email' is not a valid email address",
        "line 3: 6 values, but the header has 5 columns "
        "(put a value that contains a comma in double quotes)",
        "line 4: timezone: unknown time zone 'Mars/Base'",
    ]
    assert summary == "bulletin import_employees: 3 bad row(s); nothing was imported"
    assert installation.sql("select count(*) from bulletin_employee") == [(0,)]


def upload(text: str) -> Any:
    client = Client()
    client.force_login(factories.person("hana", ADMINISTRATOR))
    data = io.BytesIO(text.encode())
    data.name = "people.csv"
    return client.post("/hr/employees/import/", {"action": "check", "file": data})


def problem_rows(html: str) -> list[str]:
    table = html.split('id="import-problems"', 1)[1].split("</table>", 1)[0]
    return [row.split("</tr>", 1)[0] for row in table.split("<tbody>", 1)[1].split("<tr>")[1:]]


@pytest.mark.django_db
def test_hrs_import_screen_shows_every_problem_with_its_line_and_column() -> None:
    response = upload(MIXED)

    assert response.status_code == 400
    html = response.content.decode()
    assert "3 problems in people.csv — nothing was imported" in html
    assert problem_rows(html) == [
        "<td>2</td><td><code>email</code></td>"
        "<td>email &#x27;not-an-email&#x27; is not a valid email address</td>",
        "<td>3</td><td>—</td><td>6 values, but the header has 5 columns "
        "(put a value that contains a comma in double quotes)</td>",
        "<td>4</td><td><code>timezone</code></td>"
        "<td>timezone: unknown time zone &#x27;Mars/Base&#x27;</td>",
    ]
    assert nothing_imported()


@pytest.mark.django_db
def test_hrs_import_screen_says_how_many_problems_it_does_not_list() -> None:
    html = upload(wholly_wrong(MAX_PROBLEMS + 5)).content.decode()

    assert "1005 problems in people.csv" in html
    assert len(problem_rows(html)) == MAX_PROBLEMS
    assert "…and 5 more problems (only the first 1,000 are listed)" in html
    assert nothing_imported()


def bulk(items: list[dict[str, Any]]) -> Any:
    _, token = ApiToken.issue(factories.person("hris", ADMINISTRATOR), "hris", list(SCOPES))
    return Client().post(
        "/api/v1/employees/bulk",
        data=json.dumps(items),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


def item(email: str, **fields: str) -> dict[str, str]:
    return {"email": email, "name": "A Person", "department": "Eng", "location": "London"} | {
        "timezone": "UTC",
        **fields,
    }


@pytest.mark.django_db
def test_the_bulk_api_reports_every_bad_field_of_every_item_in_its_422_detail() -> None:
    response = bulk([item("not-an-email", timezone="Mars/Base"), item("ok@example.com"), item("x")])

    assert response.status_code == 422
    assert [(p["index"], p["field"]) for p in response.json()["detail"]] == [
        (0, "email"),
        (0, "timezone"),
        (2, "email"),
    ]
    assert nothing_imported()


@pytest.mark.django_db
def test_the_bulk_api_lists_the_first_thousand_problems_then_how_many_more() -> None:
    detail = bulk([item(f"bad{n}") for n in range(MAX_PROBLEMS + 2)]).json()["detail"]

    assert [p["index"] for p in detail[:-1]] == list(range(MAX_PROBLEMS))
    assert detail[-1] == {
        "field": None,
        "message": "…and 2 more problems (only the first 1,000 are listed)",
    }
    assert nothing_imported()


# --- what still stops at once -----------------------------------------------------------------


@pytest.mark.django_db
def test_a_file_that_is_not_utf8_is_reported_alone_whatever_else_is_wrong() -> None:
    data = (MIXED + "dee@example.com,Ren\xe9e,Eng,Paris,UTC\n").encode("latin-1")

    with pytest.raises(ImportRejected) as info:
        import_employees(data)

    [error] = info.value.errors
    assert error.line == 5 and "not valid UTF-8" in error.message
    assert nothing_imported()
