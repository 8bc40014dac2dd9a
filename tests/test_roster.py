"""Employee CSV import (bulletin.interfaces.roster), in-process against the test database.

Line numbers are the file's physical line numbers, the header being line 1, as a person sees
them in an editor.
"""

from __future__ import annotations

import pytest

from bulletin.domain.models import Employee
from bulletin.interfaces.roster import ImportRejected, import_employees
from tests import factories

pytestmark = pytest.mark.django_db

HEADER = "email,name,department,location,timezone"


def csv_bytes(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode("utf-8")


def rejected(data: bytes) -> list[tuple[int, str]]:
    """The (line, message) pairs an import reports; fails if the file was accepted."""
    with pytest.raises(ImportRejected) as info:
        import_employees(data)
    return [(error.line, error.message) for error in info.value.errors]


def employee(email: str, **values: object) -> Employee:
    defaults: dict[str, object] = {
        "name": "Old Name",
        "department": "Old Dept",
        "location": "Old Site",
        "timezone": "UTC",
    }
    defaults.update(values)
    defaults["location"] = factories.location(str(defaults["location"]))
    return Employee.objects.create(email=email, **defaults)


# --- good files ----------------------------------------------------------------------------


def test_a_good_csv_creates_every_employee_with_lowercased_email_and_its_fields() -> None:
    report = import_employees(
        csv_bytes(
            "Ann.Lee@Example.COM,Ann Lee,Engineering,London,Europe/London",
            "bob@example.com,Bob Ray,Sales,New York,America/New_York",
        )
    )

    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    assert report.errors == []
    rows = {
        e.email: (e.name, e.department, e.location_id, e.timezone, e.active)
        for e in Employee.objects.all()
    }
    assert rows == {
        "ann.lee@example.com": ("Ann Lee", "Engineering", "London", "Europe/London", True),
        "bob@example.com": ("Bob Ray", "Sales", "New York", "America/New_York", True),
    }


def test_surrounding_spaces_in_cells_are_not_stored() -> None:
    import_employees(csv_bytes(" ann@example.com , Ann Lee ,  Eng , London , Europe/London "))

    ann = Employee.objects.get()
    assert (ann.email, ann.name, ann.department, ann.location_id, ann.timezone) == (
        "ann@example.com",
        "Ann Lee",
        "Eng",
        "London",
        "Europe/London",
    )


def test_reimporting_updates_changed_rows_and_counts_the_unchanged_ones() -> None:
    first = csv_bytes(
        "ann@example.com,Ann Lee,Engineering,London,Europe/London",
        "bob@example.com,Bob Ray,Sales,New York,America/New_York",
        "cy@example.com,Cy Dee,Ops,Sydney,Australia/Sydney",
    )
    import_employees(first)

    second = csv_bytes(
        "ANN@example.com,Ann Lee,Engineering,London,Europe/London",  # same person, same data
        "bob@example.com,Bob Ray,Marketing,Paris,Europe/Paris",  # moved
        "cy@example.com,Cy Dee,Ops,Sydney,Australia/Sydney",
        "dee@example.com,Dee Fox,Legal,Berlin,Europe/Berlin",  # new
    )
    report = import_employees(second)

    assert (report.created, report.updated, report.unchanged) == (1, 1, 2)
    assert Employee.objects.count() == 4
    bob = Employee.objects.get(email="bob@example.com")
    assert (bob.department, bob.location_id, bob.timezone) == ("Marketing", "Paris", "Europe/Paris")


def test_importing_the_same_file_twice_changes_nothing_the_second_time() -> None:
    data = csv_bytes("ann@example.com,Ann Lee,Engineering,London,Europe/London")
    import_employees(data)
    stamp = Employee.objects.get().updated_at

    report = import_employees(data)

    assert (report.created, report.updated, report.unchanged) == (0, 0, 1)
    assert Employee.objects.get().updated_at == stamp


def test_extra_columns_in_any_position_are_allowed_and_ignored() -> None:
    data = csv_bytes(
        "E-100,ann@example.com,Ann Lee,Engineering,London,Europe/London,she/her",
        header="staff_id,email,name,department,location,timezone,pronouns",
    )

    report = import_employees(data)

    assert report.created == 1
    ann = Employee.objects.get()
    assert (ann.email, ann.name, ann.timezone) == ("ann@example.com", "Ann Lee", "Europe/London")


@pytest.mark.parametrize(
    ("cell", "active"),
    [
        ("false", False),
        ("FALSE", False),
        ("0", False),
        ("no", False),
        ("off", False),
        ("true", True),
        ("Yes", True),
        ("1", True),
        ("", True),
    ],
)
def test_an_active_column_is_honoured(cell: str, active: bool) -> None:
    data = csv_bytes(
        f"ann@example.com,Ann Lee,Eng,London,Europe/London,{cell}",
        header=f"{HEADER},active",
    )

    import_employees(data)

    assert Employee.objects.get().active is active


def test_an_active_column_deactivates_an_existing_employee_on_reimport() -> None:
    employee(
        "ann@example.com",
        name="Ann Lee",
        department="Eng",
        location="London",
        timezone="Europe/London",
    )

    report = import_employees(
        csv_bytes("ann@example.com,Ann Lee,Eng,London,Europe/London,no", header=f"{HEADER},active")
    )

    assert (report.created, report.updated, report.unchanged) == (0, 1, 0)
    assert Employee.objects.get().active is False


def test_an_active_value_that_is_not_a_boolean_is_reported_with_its_line() -> None:
    data = csv_bytes(
        "ann@example.com,Ann Lee,Eng,London,Europe/London,yes",
        "bob@example.com,Bob Ray,Eng,London,Europe/London,maybe",
        header=f"{HEADER},active",
    )

    [(line, message)] = rejected(data)

    assert line == 3
    assert "active" in message and "maybe" in message
    assert Employee.objects.count() == 0


def test_a_utf8_byte_order_mark_before_the_header_is_ignored() -> None:
    data = b"\xef\xbb\xbf" + csv_bytes("ann@example.com,Zo\u00eb \u00c5se,Eng,London,UTC")

    report = import_employees(data)

    assert report.created == 1
    assert Employee.objects.get().name == "Zo\u00eb \u00c5se"


def test_header_names_are_matched_without_regard_to_case_or_spaces() -> None:
    data = csv_bytes(
        "ann@example.com,Ann Lee,Eng,London,UTC",
        header="Email, Name ,DEPARTMENT,Location,TimeZone",
    )

    assert import_employees(data).created == 1


# --- bad rows ------------------------------------------------------------------------------

GOOD_ROW = "good@example.com,Good Person,Eng,London,Europe/London"


@pytest.mark.parametrize(
    ("bad_row", "words"),
    [
        pytest.param(
            "not-an-email,Ann,Eng,London,UTC",
            ["email", "not-an-email", "not a valid"],
            id="bad-email",
        ),
        pytest.param("ann@,Ann,Eng,London,UTC", ["email", "ann@"], id="email-without-domain"),
        pytest.param(",Ann,Eng,London,UTC", ["email", "not a valid"], id="empty-email"),
        pytest.param(
            "ann@example.com,Ann,Eng,London,Mars/Base", ["timezone", "Mars/Base"], id="unknown-zone"
        ),
        pytest.param(
            "ann@example.com,Ann,Eng,Nowhere,",
            ["timezone is empty", "location 'Nowhere' has no zone"],
            id="empty-zone-and-a-new-location",
        ),
        pytest.param(
            "ann@example.com,Ann,Eng,,", ["timezone is empty", "no location"], id="empty-zone"
        ),
        pytest.param(
            "ann@example.com,Ann,Eng,London,localtime",
            ["timezone", "localtime"],
            id="server-local-zone",
        ),
        pytest.param("ann@example.com,,Eng,London,UTC", ["name is empty"], id="empty-name"),
        pytest.param("ann@example.com,   ,Eng,London,UTC", ["name is empty"], id="blank-name"),
        pytest.param(
            "good@example.com,Twin,Eng,London,UTC",
            ["duplicate of line 2", "good@example.com"],
            id="duplicate-email",
        ),
        pytest.param(
            "GOOD@Example.com,Twin,Eng,London,UTC",
            ["duplicate of line 2", "good@example.com"],
            id="duplicate-email-other-case",
        ),
    ],
)
def test_a_bad_row_is_reported_with_its_line_number_and_a_specific_message(
    bad_row: str, words: list[str]
) -> None:
    data = csv_bytes(GOOD_ROW, GOOD_ROW.replace("good@", "other@"), bad_row)

    [(line, message)] = rejected(data)

    assert line == 4
    for word in words:
        assert word in message
    assert Employee.objects.count() == 0


def test_a_duplicate_is_reported_on_its_own_line_naming_the_first() -> None:
    data = csv_bytes(
        "A@x.com,First,Eng,London,UTC",
        "b@x.com,Other,Eng,London,UTC",
        "a@x.com,Second,Eng,London,UTC",
    )

    assert rejected(data) == [(4, "duplicate of line 2 (a@x.com)")]


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        ("email,name,department,location", "timezone"),
        ("name,department,location,timezone", "email"),
        ("email,department,timezone", "name, location"),
        ("", "email, name, department, location, timezone"),
    ],
)
def test_missing_columns_are_reported_on_line_1_by_name(header: str, missing: str) -> None:
    data = (header + "\nann@example.com,Ann,Eng,London\n").encode()

    # First: the rows are still checked by the columns there are (test_import_all_problems).
    (line, message), *_rows = rejected(data)

    assert line == 1
    assert message == f"missing column(s): {missing}"


def test_an_empty_file_is_rejected_as_missing_every_column() -> None:
    [(line, message)] = rejected(b"")

    assert line == 1
    assert "email" in message and "timezone" in message


def test_non_utf8_bytes_are_rejected_naming_the_encoding_and_nothing_is_written() -> None:
    data = HEADER.encode() + b"\nann@example.com,Ren\xe9e,Eng,Paris,Europe/Paris\n"  # Latin-1

    [(line, message)] = rejected(data)

    assert "UTF-8" in message
    assert line >= 1
    assert Employee.objects.count() == 0


def test_non_utf8_bytes_are_reported_on_the_line_that_holds_them() -> None:
    data = (
        HEADER.encode()
        + b"\nann@example.com,Ann,Eng,London,UTC\nbob@example.com,Ren\xe9e,Eng,Paris,UTC\n"
    )

    [(line, message)] = rejected(data)

    assert line == 3
    assert "UTF-8" in message


def test_line_numbers_count_blank_lines_and_crlf_endings_like_an_editor() -> None:
    data = (
        HEADER + "\r\nann@example.com,Ann,Eng,London,UTC\r\n\r\n\r\nbroken,Bob,Eng,London,UTC\r\n"
    ).encode()

    [(line, _message)] = rejected(data)

    assert line == 5


def test_a_bad_record_spanning_two_lines_is_reported_on_the_line_where_it_starts() -> None:
    data = csv_bytes(
        "ann@example.com,Ann,Eng,London,UTC",
        'broken,Bob,"Eng',
        'Platform",London,UTC',
    )

    # Two problems there: the email, and the line break in the department.
    assert {line for line, _message in rejected(data)} == {3}


def test_a_name_containing_a_line_break_is_rejected() -> None:
    data = csv_bytes('ann@example.com,"Ann\nLee",Eng,London,UTC')

    [(_line, message)] = rejected(data)

    assert "name" in message


def test_a_value_longer_than_its_column_is_reported_with_its_line() -> None:
    data = csv_bytes(
        "ann@example.com,Ann,Eng,London,UTC",
        f"bob@example.com,{'B' * 201},Eng,London,UTC",
    )

    [(line, message)] = rejected(data)

    assert line == 3
    assert "name" in message


def test_every_bad_row_is_reported_not_just_the_first() -> None:
    data = csv_bytes(
        "nope,Ann,Eng,London,UTC",  # 2
        "bob@example.com,Bob,Eng,London,UTC",  # 3 good
        "cy@example.com,,Eng,London,UTC",  # 4
        "dee@example.com,Dee,Eng,London,Mars/Base",  # 5
        "BOB@example.com,Bob Again,Eng,London,UTC",  # 6
    )

    errors = rejected(data)

    assert [line for line, _ in errors] == [2, 4, 5, 6]
    assert "email" in errors[0][1]
    assert errors[1][1] == "name is empty"
    assert "Mars/Base" in errors[2][1]
    assert "duplicate of line 3" in errors[3][1]


def test_a_file_with_any_bad_row_writes_nothing_at_all() -> None:
    existing = employee("ann@example.com")
    before = Employee.objects.count()

    errors = rejected(
        csv_bytes(
            "ann@example.com,Ann Lee,Engineering,London,Europe/London",  # would update
            "new@example.com,New Person,Eng,London,UTC",  # would create
            "bad row,Bad,Eng,London,UTC",
        )
    )

    assert [line for line, _ in errors] == [4]
    assert Employee.objects.count() == before
    assert not Employee.objects.filter(email="new@example.com").exists()
    existing.refresh_from_db()
    assert (existing.name, existing.department, existing.location_id, existing.timezone) == (
        "Old Name",
        "Old Dept",
        "Old Site",
        "UTC",
    )


def test_the_rejection_message_counts_the_bad_rows_and_says_nothing_was_imported() -> None:
    with pytest.raises(ImportRejected) as info:
        import_employees(csv_bytes("x,A,E,L,UTC", "y,B,E,L,UTC"))

    assert str(info.value) == "2 bad row(s); nothing was imported"
    assert [str(e) for e in info.value.errors] == [
        "line 2: email 'x' is not a valid email address",
        "line 3: email 'y' is not a valid email address",
    ]


# --- dry run -------------------------------------------------------------------------------


def test_a_dry_run_reports_the_counts_but_writes_nothing() -> None:
    existing = employee("ann@example.com")
    employee(
        "bob@example.com",
        name="Bob Ray",
        department="Sales",
        location="NY",
        timezone="America/New_York",
    )

    report = import_employees(
        csv_bytes(
            "ann@example.com,Ann Lee,Engineering,London,Europe/London",  # changed
            "bob@example.com,Bob Ray,Sales,NY,America/New_York",  # unchanged
            "cy@example.com,Cy Dee,Ops,Sydney,Australia/Sydney",  # new
        ),
        dry_run=True,
    )

    assert (report.created, report.updated, report.unchanged) == (1, 1, 1)
    assert Employee.objects.count() == 2
    existing.refresh_from_db()
    assert (existing.name, existing.timezone) == ("Old Name", "UTC")


def test_a_dry_run_of_a_bad_file_is_rejected_the_same_way() -> None:
    with pytest.raises(ImportRejected) as info:
        import_employees(csv_bytes("ann@example.com,Ann,Eng,London,Mars/Base"), dry_run=True)

    assert [e.line for e in info.value.errors] == [2]
