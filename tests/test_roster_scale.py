"""The employee CSV import on files of thousands of rows, read as the command line reads them
(an open file, streamed): every bad row reported by line wherever it sits and nothing written,
a re-import that changes nothing, and an update of some rows that touches only those.

Speed and memory at 100,000 rows are measured by ``make bench BENCH=employee-import``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bulletin.domain.locations import Location
from bulletin.domain.models import Employee
from bulletin.interfaces import roster_rows
from bulletin.interfaces.roster import ImportRejected, import_employees
from tests import factories

pytestmark = pytest.mark.django_db

ROWS = 5000
HEADER = "email,name,department,location,timezone,country,subdivision,working_week,active"
PLACES = {
    "Leeds": ("Europe/London", "GB", "ENG", "Mon-Fri 09:00-17:30"),
    "Pune": ("Asia/Kolkata", "IN", "MH", "Mon-Fri 09:30-18:30"),
    "Austin": ("America/Chicago", "US", "TX", "Mon-Fri 08:00-17:00"),
}
DEPARTMENTS = ("Engineering", "Sales", "Support", "Finance")


def row(index: int, **changes: str) -> dict[str, str]:
    """Person ``index`` as a file describes them; every fifth leaves the zone to the location."""
    location = list(PLACES)[index % len(PLACES)]
    zone, country, subdivision, week = PLACES[location]
    cells = {
        "email": f"person{index}@example.com",
        "name": f"Person {index}",
        "department": DEPARTMENTS[index % len(DEPARTMENTS)],
        "location": location,
        "timezone": "" if index % 5 == 0 else zone,
        "country": country,
        "subdivision": subdivision,
        "working_week": week,
        "active": "yes",
    }
    cells.update(changes)
    return cells


def write(path: Path, rows: list[dict[str, str]], header: str = HEADER) -> Path:
    names = header.split(",")
    lines = [header, *(",".join(cells[name] for name in names) for cells in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def imported(path: Path, **options: Any) -> Any:
    """Import ``path`` streamed from an open file, as ``bulletin import_employees`` does."""
    with path.open("rb") as stream:
        return import_employees(stream, **options)


def rejected(path: Path) -> list[tuple[int, str]]:
    with pytest.raises(ImportRejected) as info:
        imported(path)
    return [(error.line, error.message) for error in info.value.errors]


def stored() -> dict[str, tuple[Any, ...]]:
    fields = ("name", "department", "location_id", "timezone", "active", "updated_at")
    return {email: tuple(rest) for email, *rest in Employee.objects.values_list("email", *fields)}


def test_bad_rows_scattered_among_thousands_are_each_reported_by_line_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    factories.location("Leeds", zone="Europe/London")
    Employee.objects.create(email="person10@example.com", name="Kept", timezone="UTC")
    rows = [row(index) for index in range(ROWS)]
    # Line = index + 2: the header is line 1.
    rows[3] = row(3, email="not-an-email")
    rows[777] = row(777, timezone="Mars/Base")
    rows[1500] = row(1500, name="")
    rows[2222] = row(2222, email="person5@example.com")
    rows[3001] = row(3001, active="maybe")
    rows[3500] = row(3500, working_week="Mon-Fri 18:00-08:00")
    rows[3999] = row(3999, country="FR")  # Leeds is in GB, says every other row
    rows[4444] = row(4444, name="Tab\there")
    rows[ROWS - 1] = row(ROWS - 1, name="N" * 201)

    errors = rejected(write(tmp_path / "staff.csv", rows))

    assert [line for line, _ in errors] == [5, 779, 1502, 2224, 3003, 3502, 4001, 4446, ROWS + 1]
    messages = dict(errors)
    assert messages[5] == "email 'not-an-email' is not a valid email address"
    assert messages[779] == "timezone: unknown time zone 'Mars/Base'"
    assert messages[1502] == "name is empty"
    assert messages[2224] == "duplicate of line 7 (person5@example.com)"
    assert messages[3003].startswith("active 'maybe' is not true or false")
    assert messages[3502].startswith("working_week: ")
    assert messages[4001] == "location 'Leeds': country 'FR' disagrees with line 2 ('GB')"
    assert messages[4446] == "name contains a control character"
    assert messages[ROWS + 1] == "name is longer than 200 characters"
    assert list(Employee.objects.values_list("email", "name")) == [("person10@example.com", "Kept")]
    assert list(Location.objects.values_list("name", "country")) == [("Leeds", "")]


def test_reimporting_the_same_large_file_changes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path / "staff.csv", [row(index) for index in range(ROWS)])
    first = imported(path)
    before = stored()

    again = imported(path)

    assert (first.created, first.updated, first.unchanged) == (ROWS, 0, 0)
    assert (again.created, again.updated, again.unchanged) == (0, 0, ROWS)
    assert again.locations == []
    assert stored() == before


def test_an_update_of_some_rows_writes_those_and_leaves_every_other_row_as_it_was(
    tmp_path: Path,
) -> None:
    imported(write(tmp_path / "first.csv", [row(index) for index in range(ROWS)]))
    before = stored()
    rows = [row(index) for index in range(ROWS)]
    for index in range(0, ROWS, 7):
        rows[index] = row(index, department="Legal", name=f"Person {index} Renamed")
    for index in range(3, ROWS, 11):
        rows[index]["active"] = "no"
    rows.append(row(ROWS))
    changed = set(range(0, ROWS, 7)) | set(range(3, ROWS, 11))

    report = imported(write(tmp_path / "second.csv", rows))

    assert (report.created, report.updated, report.unchanged) == (
        1,
        len(changed),
        ROWS - len(changed),
    )
    after = stored()
    for index in range(ROWS):
        email = f"person{index}@example.com"
        if index not in changed:
            assert after[email] == before[email], index
            continue
        name, department, location, zone, active, stamp = after[email]
        renamed = index % 7 == 0
        assert name == (f"Person {index} Renamed" if renamed else f"Person {index}")
        assert department == ("Legal" if renamed else before[email][1])
        assert (location, zone) == before[email][2:4]
        assert active is (index % 11 != 3)
        assert stamp > before[email][5]
    assert after[f"person{ROWS}@example.com"][:2] == (f"Person {ROWS}", DEPARTMENTS[ROWS % 4])


def test_a_file_without_the_active_column_keeps_who_was_deactivated(tmp_path: Path) -> None:
    imported(write(tmp_path / "first.csv", [row(index, active="no") for index in range(50)]))
    header = HEADER.removesuffix(",active")

    report = imported(write(tmp_path / "second.csv", [row(i) for i in range(50)], header))

    assert (report.updated, report.unchanged) == (0, 50)
    assert not Employee.objects.filter(active=True).exists()


def test_a_dry_run_of_a_large_file_counts_every_row_and_writes_nothing(tmp_path: Path) -> None:
    imported(write(tmp_path / "first.csv", [row(index) for index in range(100)]))
    before = stored()
    rows = [row(index, department="Legal") for index in range(ROWS)]

    report = imported(write(tmp_path / "second.csv", rows), dry_run=True)

    assert (report.created, report.updated, report.unchanged) == (ROWS - 100, 100, 0)
    assert stored() == before


# --- a file read in blocks: nothing depends on where a block ends ----------------------------


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of 7 bytes: every line, quoted record and line ending crosses a block's end."""
    monkeypatch.setattr(roster_rows._Text, "BLOCK", 7)


MIXED = (
    b"email,name,department,location,timezone\r\n"
    b'ann@example.com,"Ann\r\nLee",Eng,Leeds,UTC\r\n'  # 2-3: a quoted line break: refused
    b"\r\n"  # 4
    b"bob@example.com,Bob,Eng,Leeds,UTC\rcy@example.com,Cy,Eng,Leeds,UTC\n"  # 5 and 6: lone CR
    b"dee@example.com,,Eng,Leeds,UTC\n"  # 7: no name
)


def test_lines_are_numbered_alike_whatever_the_block_size(small_blocks: None) -> None:
    with pytest.raises(ImportRejected) as info:
        import_employees(MIXED)

    assert [(e.line, e.message) for e in info.value.errors] == [
        (2, "name must be a single line"),
        (7, "name is empty"),
    ]


@pytest.mark.parametrize(
    ("data", "line", "words"),
    [
        (b"email,name,department,location,timezone\nann@x.com,Ren\xc3", 2, "byte 53"),
        (b"email,name,department,location,timezone\nann@x.com,A,E,L,UTC\nb\0b\n", 3, "NUL"),
        (b"email,name\n" + b"x" * 40 + b"\xe9\n", 2, "byte 51"),  # a bad byte beats the header
        # After a byte-order mark (reported on line 1 before the import streamed the file).
        (b"\xef\xbb\xbfemail,name,department,location,timezone\n\xff\n", 2, "byte 40"),
        (b"email,name\n\0\n\xff", 3, "byte 13"),  # a bad byte beats an earlier NUL
        (b"em\xffail\nx\xff\n", 1, "byte 2"),  # the first of two bad bytes
        (b"name\n\0", 2, "NUL"),  # a NUL beats a header without the required columns
    ],
)
def test_a_bad_byte_or_nul_is_reported_on_its_line_whatever_the_block_size(
    small_blocks: None, data: bytes, line: int, words: str
) -> None:
    with pytest.raises(ImportRejected) as info:
        import_employees(data)

    [error] = info.value.errors
    assert error.line == line and words in error.message


def test_a_file_read_in_small_blocks_imports_every_row_with_its_values(small_blocks: None) -> None:
    data = (
        b"email,name,department,location,timezone\r\n"
        b"ann@x.com,Ann,Eng,Leeds,UTC\rbo@x.com,Bo,Ops,Leeds,UTC"  # no line end at the end
    )

    report = import_employees(data)

    assert report.created == 2
    assert sorted(Employee.objects.values_list("email", "name", "department")) == [
        ("ann@x.com", "Ann", "Eng"),
        ("bo@x.com", "Bo", "Ops"),
    ]
