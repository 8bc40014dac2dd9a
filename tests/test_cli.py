"""The ``bulletin`` command line: output formats, exit codes and one-line errors.

Exit codes and stderr are checked through real subprocesses (the ``installation`` fixture);
counts and stored rows are checked in-process where that is cheaper.
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    Delivery,
    DeliveryState,
    Employee,
    Location,
    Occurrence,
    OccurrenceState,
    ScheduleKind,
)
from tests import factories
from tests.harness import Installation

DELIVERY_STATES = [
    "pending",
    "claimed",
    "sending",
    "sent",
    "failed",
    "unknown",
    "skipped",
    "held",
    "bounced",
]


def one_line(stderr: str) -> str:
    """The single line a failing command may print, or an assertion error."""
    assert "Traceback" not in stderr
    text = stderr.strip()
    assert text, "expected an error message on stderr"
    assert "\n" not in text and "\r" not in text, f"expected one line, got:\n{stderr}"
    return text


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def count(installation: Installation, table: str) -> int:
    return int(installation.sql(f"select count(*) from {table}")[0][0])


# --- import_employees ----------------------------------------------------------------------


def test_import_employees_prints_a_summary_and_stores_every_row(
    installation: Installation,
) -> None:
    path = write(
        installation.directory,
        "staff.csv",
        "email,name,department,location,timezone\n"
        "Ann@Example.com,Ann Lee,Engineering,London,Europe/London\n"
        "bob@example.com,Bob Ray,Sales,New York,America/New_York\n",
    )

    result = installation.run("import_employees", str(path))

    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "imported: 2 created, 0 updated, 0 unchanged",
        "new location London (Europe/London)",
        "new location New York (America/New_York)",
    ]
    assert result.stderr == ""
    assert installation.sql("select email, timezone from bulletin_employee order by email") == [
        ("ann@example.com", "Europe/London"),
        ("bob@example.com", "America/New_York"),
    ]


def test_import_employees_with_bad_rows_fails_with_one_line_per_row_and_imports_nothing(
    installation: Installation,
) -> None:
    path = write(
        installation.directory,
        "staff.csv",
        "email,name,department,location,timezone\n"
        "not-an-email,Ann,Eng,London,Europe/London\n"
        "good@example.com,Good,Eng,London,UTC\n"
        "bob@example.com,Bob,Ops,NY,Mars/Base\n"
        "cy@example.com,,Ops,NY,UTC\n",
    )

    result = installation.run("import_employees", str(path), check=False)

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 4
    for line, (number, words) in zip(
        lines[:3], [(2, "not-an-email"), (4, "Mars/Base"), (5, "name is empty")], strict=True
    ):
        assert f"line {number}:" in line
        assert words in line
    assert lines[3] == "bulletin import_employees: 3 bad row(s); nothing was imported"
    assert result.stdout == ""
    assert count(installation, "bulletin_employee") == 0


def test_send_now_with_an_id_that_is_no_announcement_fails_with_one_line(
    installation: Installation,
) -> None:
    result = installation.run("send_now", "424242", check=False)

    assert result.returncode != 0
    assert one_line(result.stderr) == "bulletin send_now: no announcement with id 424242"
    assert result.stdout == ""


def test_announce_with_working_hours_on_the_command_line_stores_it(
    installation: Installation,
) -> None:
    body = write(installation.directory, "body.md", "Hello")
    common = ("--title", "T", "--body-file", str(body), "--cron", "0 9 * * 1-5", "--tz", "UTC")

    held = installation.run("announce", *common, "--working-hours").stdout.strip()
    plain = installation.run("announce", *common).stdout.strip()

    rows = installation.sql("select id, working_hours from bulletin_announcement order by id")
    assert [(str(i), bool(w)) for i, w in rows] == [(held, True), (plain, False)]


def test_import_employees_of_a_missing_file_fails_with_one_line(
    installation: Installation,
) -> None:
    missing = installation.directory / "no-such-file.csv"

    result = installation.run("import_employees", str(missing), check=False)

    assert result.returncode != 0
    message = one_line(result.stderr)
    assert message.startswith("bulletin import_employees:")
    assert str(missing) in message
    assert "No such file" in message


def test_a_misspelt_command_is_one_line_and_a_usage_error(installation: Installation) -> None:
    result = installation.run("dispach", check=False)

    assert result.returncode == 2
    assert result.stderr == "bulletin: unknown command 'dispach' (bulletin help lists them)\n"


@pytest.mark.django_db
def test_import_employees_dry_run_says_would_import_and_writes_nothing(tmp_path: Path) -> None:
    Employee.objects.create(email="ann@example.com", name="Ann", timezone="UTC")
    path = write(
        tmp_path,
        "staff.csv",
        "email,name,department,location,timezone\n"
        "ann@example.com,Ann Lee,Eng,London,Europe/London\n"
        "bob@example.com,Bob,Eng,London,UTC\n",
    )
    out = io.StringIO()

    call_command("import_employees", str(path), "--dry-run", stdout=out)

    assert out.getvalue().splitlines() == [
        "would import: 1 created, 1 updated, 0 unchanged",
        "new location London (Europe/London)",
    ]
    assert list(Employee.objects.values_list("email", "name")) == [("ann@example.com", "Ann")]
    assert not Location.objects.exists()


@pytest.mark.django_db
def test_import_employees_in_process_reports_bad_rows_prefixed_with_the_file_name(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path, "staff.csv", "email,name,department,location,timezone\nx,Ann,Eng,L,UTC\n"
    )
    err = io.StringIO()

    with pytest.raises(CommandError, match=r"1 bad row\(s\); nothing was imported"):
        call_command("import_employees", str(path), stdout=io.StringIO(), stderr=err)

    assert err.getvalue().strip() == f"{path}:line 2: email 'x' is not a valid email address"
    assert Employee.objects.count() == 0


# --- announce ------------------------------------------------------------------------------

EVERY_DAY = ["--cron", "0 9 * * *"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        pytest.param(
            ["--cron", "61 * * * *", "--tz", "UTC"],
            ["cron", "61 * * * *", "minute"],
            id="invalid-cron",
        ),
        pytest.param(
            [*EVERY_DAY, "--tz", "Mars/Base"],
            ["--tz", "unknown time zone", "Mars/Base"],
            id="unknown-zone",
        ),
        pytest.param(
            ["--at", "2027-03-14T02:30", "--tz", "America/New_York"],
            ["does not exist", "2027-03-14", "-05:00", "-04:00"],
            id="one-off-in-spring-gap",
        ),
        pytest.param(
            ["--at", "2027-11-07T01:30", "--tz", "America/New_York"],
            ["occurs twice", "2027-11-07 01:30", "-04:00", "-05:00"],
            id="one-off-in-autumn-fold",
        ),
        pytest.param(
            ["--at", "2020-01-06T09:00", "--tz", "Europe/London"],
            ["2020-01-06T09:00", "in the past"],
            id="one-off-in-the-past",
        ),
        pytest.param(
            [*EVERY_DAY, "--tz", "UTC", "--title", "Hello\nBcc: everyone@example.com"],
            ["title", "single line"],
            id="title-with-newline",
        ),
        pytest.param(
            [*EVERY_DAY, "--tz", "UTC", "--channels", "email,pigeon"],
            ["channel", "pigeon"],
            id="unknown-channel",
        ),
        pytest.param(
            [*EVERY_DAY, "--tz", "UTC", "--audience", "department:"],
            ["--audience", "department:NAME[,NAME...]", "location:NAME[,NAME...]", "all"],
            id="department-without-name",
        ),
        pytest.param(
            [*EVERY_DAY, "--tz", "UTC", "--audience", "department: , ,"],
            ["--audience", "department:NAME[,NAME...]"],
            id="department-with-blank-names",
        ),
        pytest.param(
            [*EVERY_DAY, "--tz", "UTC", "--audience", "team:Sales,Support"],
            ["--audience", "'team:Sales,Support'", "department:NAME[,NAME...]"],
            id="unknown-audience-kind",
        ),
        pytest.param(
            [*EVERY_DAY, "--at", "2099-01-04T09:00", "--tz", "UTC"],
            ["--at", "--cron", "not allowed"],
            id="both-cron-and-at",
        ),
    ],
)
def test_announce_rejects_bad_input_with_one_line_and_writes_nothing(
    installation: Installation, args: list[str], words: list[str]
) -> None:
    body = write(installation.directory, "body.md", "Hello **everyone**.\n")
    title = [] if "--title" in args else ["--title", "Quarterly update"]

    result = installation.run("announce", *title, "--body-file", str(body), *args, check=False)

    assert result.returncode != 0
    message = one_line(result.stderr)
    assert message.startswith("bulletin announce:")
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert result.stdout.strip() == ""
    assert count(installation, "bulletin_announcement") == 0


def test_announce_prints_only_the_new_id_and_schedules_the_announcement(
    installation: Installation,
) -> None:
    body = write(installation.directory, "body.md", "Hello **{{ first_name }}**.\n")

    result = installation.run(
        "announce",
        "--title",
        "New office",
        "--body-file",
        str(body),
        "--at",
        "2099-01-05T09:00",
        "--tz",
        "Europe/London",
        "--audience",
        "location:London",
        "--allow-empty",  # nobody is imported yet: London's people are still to come
    )

    assert result.returncode == 0
    assert re.fullmatch(r"\d+\n?", result.stdout), result.stdout
    new_id = int(result.stdout)
    rows = installation.sql(
        "select title, body, status, next_fire_at, at_local, timezone, audience_kind,"
        " audience_values from bulletin_announcement where id = ?",
        (new_id,),
    )
    assert len(rows) == 1
    title, text, status, next_fire_at, at_local, zone, kind, value = rows[0]
    assert (title, text, status) == ("New office", "Hello **{{ first_name }}**.\n", "scheduled")
    # 09:00 GMT in January is 09:00 UTC.
    assert next_fire_at is not None and str(next_fire_at).startswith("2099-01-05 09:00")
    values = value if isinstance(value, list) else json.loads(value)  # PostgreSQL decodes JSON
    assert (at_local, zone, kind, values) == (
        "2099-01-05T09:00",
        "Europe/London",
        "location",
        ["London"],
    )


def test_announce_with_approval_required_waits_for_approval_and_tick_plans_nothing(
    installation: Installation,
) -> None:
    body = write(installation.directory, "body.md", "Hello.\n")
    installation.run(
        "import_employees",
        str(
            write(
                installation.directory,
                "one.csv",
                ("email,name,department,location,timezone\nann@example.com,Ann,Ops,London,UTC\n"),
            )
        ),
    )
    installation.env["BULLETIN_REQUIRE_APPROVAL"] = "true"
    when = timezone.now() + timedelta(minutes=2)

    result = installation.run(
        "announce", "--title", "Unapproved", "--body-file", str(body),
        "--at", f"{when:%Y-%m-%dT%H:%M}", "--tz", "UTC",
    )  # fmt: skip

    new_id = int(result.stdout.split()[0])
    assert result.stdout.strip() == f"{new_id} waiting for approval"
    [(status, next_fire_at)] = installation.sql(
        "select status, next_fire_at from bulletin_announcement where id = ?", (new_id,)
    )
    assert (status, next_fire_at) == ("pending_approval", None)
    audit = installation.sql(
        "select action, actor_id, detail from bulletin_auditevent"
        " where announcement_id = ? order by id",
        (new_id,),
    )
    assert [(action, actor) for action, actor, _ in audit] == [
        ("created", None),
        ("submitted", None),
    ]
    for *_, detail in audit:
        detail = detail if isinstance(detail, dict) else json.loads(detail)
        assert detail["via"] == "command line"
    # Even with its time come (a scheduled one would be due now), the planner leaves it alone.
    past = timezone.now() - timedelta(minutes=1)
    installation.sql(
        "update bulletin_announcement set next_fire_at = ? where id = ?", (past, new_id)
    )
    installation.run("tick")
    assert count(installation, "bulletin_occurrence") == 0


@pytest.mark.django_db
def test_announce_accepts_several_comma_separated_departments(tmp_path: Path) -> None:
    factories.employees(1, prefix="sales", department="Sales")
    factories.employees(1, prefix="support", department="Support")
    body = write(tmp_path, "body.md", "Hi\n")
    out = io.StringIO()

    call_command(
        "announce",
        "--title",
        "Team lunch",
        "--body-file",
        str(body),
        *EVERY_DAY,
        "--tz",
        "UTC",
        "--audience",
        "department:Sales, Support ,Sales,",
        stdout=out,
    )

    item = Announcement.objects.get(pk=int(out.getvalue()))
    assert (item.audience_kind, item.audience_values) == ("department", ["Sales", "Support"])
    assert item.status == AnnouncementStatus.SCHEDULED


@pytest.mark.django_db
def test_announce_names_the_audience_option_for_a_name_that_is_too_long(tmp_path: Path) -> None:
    body = write(tmp_path, "body.md", "Hi\n")

    with pytest.raises(CommandError) as info:
        call_command(
            "announce",
            "--title",
            "T",
            "--body-file",
            str(body),
            *EVERY_DAY,
            "--tz",
            "UTC",
            "--audience",
            "location:London," + "x" * 101,
            stdout=io.StringIO(),
        )

    assert str(info.value).startswith("--audience: ")
    assert "longer than 100 characters" in str(info.value)
    assert Announcement.objects.count() == 0


def test_announce_without_arguments_is_a_usage_error_on_one_line(
    installation: Installation,
) -> None:
    result = installation.run("announce", check=False)

    assert result.returncode == 2
    message = one_line(result.stderr)
    assert message.startswith("bulletin announce: error:")
    assert "--title" in message and "--tz" in message
    assert "usage:" not in message


@pytest.mark.django_db
def test_announce_names_an_unknown_zone_once(tmp_path: Path) -> None:
    body = write(tmp_path, "body.md", "Hi\n")

    with pytest.raises(CommandError) as info:
        call_command(
            "announce",
            "--title",
            "T",
            "--body-file",
            str(body),
            *EVERY_DAY,
            "--tz",
            "Mars/Base",
            stdout=io.StringIO(),
        )

    assert str(info.value).count("Mars/Base") == 1
    assert Announcement.objects.count() == 0


# --- preview -------------------------------------------------------------------------------


def test_preview_lists_local_and_utc_times_with_a_note_on_the_spring_forward_day(
    installation: Installation,
) -> None:
    result = installation.run(
        "preview",
        "--cron",
        "30 2 * * *",
        "--tz",
        "America/New_York",
        "--from",
        "2027-03-12T00:00",
        "--count",
        "4",
    )

    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "2027-03-12T02:30:00-05:00  2027-03-12T07:30:00Z",
        "2027-03-13T02:30:00-05:00  2027-03-13T07:30:00Z",
        "2027-03-14T03:00:00-04:00  2027-03-14T07:00:00Z  # 02:30 does not exist on 14 Mar 2027"
        " (clocks jump forward); fires at 03:00",
        "2027-03-15T02:30:00-04:00  2027-03-15T06:30:00Z",
    ]


def test_preview_of_an_hourly_schedule_on_the_spring_forward_day_skips_the_lost_hour(
    installation: Installation,
) -> None:
    result = installation.run(
        *("preview", "--cron", "15 * * * *", "--tz", "America/New_York"),
        *("--from", "2024-03-10T00:00", "--count", "4"),
    )

    assert result.returncode == 0
    assert result.stdout.splitlines() == [  # Debian cron: no 03:00 catch-up beside 03:15
        "2024-03-10T00:15:00-05:00  2024-03-10T05:15:00Z",
        "2024-03-10T01:15:00-05:00  2024-03-10T06:15:00Z",
        "2024-03-10T03:15:00-04:00  2024-03-10T07:15:00Z  # 02:15 does not exist on 10 Mar 2024"
        " (clocks jump forward): this schedule skips it",
        "2024-03-10T04:15:00-04:00  2024-03-10T08:15:00Z",
    ]


def test_preview_of_a_fixed_time_in_the_repeated_hour_fires_once_with_a_note(
    installation: Installation,
) -> None:
    result = installation.run(
        "preview",
        "--cron",
        "30 1 * * *",
        "--tz",
        "America/New_York",
        "--from",
        "2026-10-31T00:00",
        "--count",
        "3",
    )

    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "2026-10-31T01:30:00-04:00  2026-10-31T05:30:00Z",
        "2026-11-01T01:30:00-04:00  2026-11-01T05:30:00Z  # 01:30 occurs twice on 1 Nov 2026"
        " (clocks go back); fires once, at the first (EDT)",
        "2026-11-02T01:30:00-05:00  2026-11-02T06:30:00Z",
    ]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        pytest.param(
            ["--cron", "0 25 * * *", "--tz", "UTC"], ["cron", "0 25 * * *"], id="bad-cron"
        ),
        pytest.param(["--cron", "0 9 * * *", "--tz", "Mars/Base"], ["Mars/Base"], id="bad-zone"),
        pytest.param(
            ["--cron", "0 9 * * *", "--tz", "UTC", "--from", "next tuesday"],
            ["--from", "next tuesday"],
            id="bad-from",
        ),
    ],
)
def test_preview_errors_are_one_line_with_a_nonzero_exit(
    installation: Installation, args: list[str], words: list[str]
) -> None:
    result = installation.run("preview", *args, check=False)

    assert result.returncode != 0
    message = one_line(result.stderr)
    assert message.startswith("bulletin preview:")
    for word in words:
        assert word in message
    assert result.stdout == ""


# --- status --------------------------------------------------------------------------------


@pytest.fixture
def deliveries_in_every_state(db: None) -> dict[str, object]:
    """One occurrence fanned out to 11 people: 3 pending (2 due), 1 claimed, 2 sent, 1 failed,
    1 unknown, 1 skipped, 1 held, 1 bounced, 0 sending."""
    now = timezone.now()
    announcement = Announcement.objects.create(
        title="Status check",
        body="Hi",
        channels=["email"],
        schedule_kind=ScheduleKind.CRON,
        cron="0 9 * * *",
        timezone="UTC",
        status=AnnouncementStatus.SCHEDULED,
        planned_until=now,
        next_fire_at=now + timedelta(hours=1),
    )
    occurrence = Occurrence.objects.create(
        announcement=announcement,
        zone="UTC",
        fire_at=now - timedelta(minutes=30),
        state=OccurrenceState.FANNED_OUT,
        delivery_count=10,
    )
    oldest_due = now - timedelta(minutes=20)
    plan = [
        (DeliveryState.PENDING, oldest_due),
        (DeliveryState.PENDING, now - timedelta(minutes=5)),
        (DeliveryState.PENDING, now + timedelta(hours=2)),  # not due yet
        (DeliveryState.CLAIMED, now - timedelta(minutes=40)),
        (DeliveryState.SENT, now - timedelta(minutes=50)),
        (DeliveryState.SENT, now - timedelta(minutes=50)),
        (DeliveryState.FAILED, now - timedelta(minutes=50)),
        (DeliveryState.UNKNOWN, now - timedelta(minutes=50)),
        (DeliveryState.SKIPPED, now - timedelta(minutes=50)),
        # Waiting for a working window: not due, whenever its window opens.
        (DeliveryState.HELD, now - timedelta(minutes=45)),
        # Sent, then a hard bounce came back (bulletin.dispatch.bounces).
        (DeliveryState.BOUNCED, now - timedelta(minutes=50)),
    ]
    for n, (state, due_at) in enumerate(plan):
        person = Employee.objects.create(email=f"p{n}@example.com", name=f"P {n}", timezone="UTC")
        Delivery.objects.create(
            occurrence=occurrence, employee=person, channel="email", state=state, due_at=due_at
        )
    return {"oldest_due": oldest_due}


EXPECTED_COUNTS = {
    "pending": 3,
    "claimed": 1,
    "sending": 0,
    "sent": 2,
    "failed": 1,
    "unknown": 1,
    "skipped": 1,
    "held": 1,
    "bounced": 1,
}


def test_status_json_counts_deliveries_by_state_and_names_the_oldest_due(
    deliveries_in_every_state: dict[str, object],
) -> None:
    out = io.StringIO()

    call_command("status", "--json", stdout=out)

    status = json.loads(out.getvalue())
    assert status["deliveries"] == EXPECTED_COUNTS
    oldest = datetime.fromisoformat(status["oldest_due_at"])
    assert oldest == deliveries_in_every_state["oldest_due"]
    assert 20 * 60 - 5 <= status["oldest_due_age_seconds"] <= 20 * 60 + 60
    assert status["planner_lag_seconds"] == 0


def test_status_prints_one_readable_line_per_delivery_state(
    deliveries_in_every_state: dict[str, object],
) -> None:
    out = io.StringIO()

    call_command("status", stdout=out)

    lines = out.getvalue().splitlines()
    for state, number in EXPECTED_COUNTS.items():
        assert any(re.fullmatch(rf"\s*{state}\s+{number}", line) for line in lines), (
            f"no '{state} {number}' line in:\n{out.getvalue()}"
        )
    [oldest] = [
        m for line in lines if (m := re.fullmatch(r"oldest due delivery: (\S+) \((\d+)s\)", line))
    ]
    assert datetime.fromisoformat(oldest[1]) == deliveries_in_every_state["oldest_due"]
    assert 20 * 60 - 5 <= int(oldest[2]) <= 20 * 60 + 60
    assert any(line.startswith("planner lag:") for line in lines)


@pytest.mark.django_db
def test_status_reports_planner_lag_for_an_announcement_overdue_for_planning() -> None:
    Announcement.objects.create(
        title="Late",
        body="Hi",
        channels=["email"],
        schedule_kind=ScheduleKind.CRON,
        cron="0 9 * * *",
        timezone="UTC",
        status=AnnouncementStatus.SCHEDULED,
        next_fire_at=datetime.now(UTC) - timedelta(minutes=10),
    )
    out = io.StringIO()

    call_command("status", "--json", stdout=out)

    assert 600 - 5 <= json.loads(out.getvalue())["planner_lag_seconds"] <= 600 + 60


def test_status_json_on_the_command_line_is_one_object_mapping_every_state_to_an_integer(
    installation: Installation,
) -> None:
    result = installation.run("status", "--json")

    assert result.returncode == 0
    assert len(result.stdout.strip().splitlines()) == 1
    status = json.loads(result.stdout)
    assert isinstance(status, dict)
    deliveries = status["deliveries"]
    assert sorted(deliveries) == sorted(DELIVERY_STATES)
    assert all(type(value) is int for value in deliveries.values())
    assert sum(deliveries.values()) == 0
