"""Bad input, as one table: every way in (the HR form, the REST API, the CSV import, the command
line, the environment) refuses it with the exact message a person sees — the field, the CSV
line, or one line on stderr with a non-zero exit — and writes nothing: every table of the app,
and the auth users, hold as many rows after as before.

Command-line, CSV-import and settings cases run the real ``bulletin`` command in a subprocess
against one migrated installation for the module; form and API cases use Django's test client.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import Announcement, ApiToken, Employee, InboxItem
from bulletin.domain.records import MAX_BODY_CHARS
from bulletin.interfaces.api.auth import SCOPES
from bulletin.interfaces.hr.imports import WEB_LIMIT
from bulletin.interfaces.roster import MAX_BYTES, import_employees
from tests import factories
from tests.conftest import own_database
from tests.harness import Installation, SmtpSink, installation_at

HEADER = "email,name,department,location,timezone"
GOOD_ROW = "ann@example.com,Ann Lee,Engineering,London,Europe/London"


# --- what was written ---------------------------------------------------------------------------


def tables() -> dict[str, str]:
    """Every table of the app (many-to-many ones too) and the auth users, by model label."""
    models = apps.get_app_config("bulletin").get_models(include_auto_created=True)
    found = {model._meta.label: model._meta.db_table for model in models}
    found["auth.User"] = "auth_user"
    return found


def row_counts(sql: Callable[[str], list[tuple[Any, ...]]]) -> dict[str, int]:
    return {
        label: int(sql(f"SELECT count(*) FROM {table}")[0][0]) for label, table in tables().items()
    }


def in_process_sql(statement: str) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(statement)
        return list(cursor.fetchall())


# --- the world a case runs in -------------------------------------------------------------------


@dataclass
class World:
    """What a case may use: an HR page and an API token as an administrator (in-process), or a
    real installation driven through its command line (a subprocess)."""

    request: pytest.FixtureRequest
    in_process: bool
    _site: Installation | None = None

    @property
    def site(self) -> Installation:
        assert self._site is not None
        return self._site

    @cached_property
    def administrator(self) -> Any:
        return self.request.getfixturevalue("ada")

    @cached_property
    def token(self) -> str:
        return ApiToken.issue(self.administrator, "bad input", list(SCOPES))[1]

    def hr(self) -> Client:
        client = Client()
        client.force_login(self.administrator)
        return client

    def api(self, method: str, path: str, body: Any = None, raw: str | None = None) -> Any:
        data = raw if raw is not None else json.dumps(body)
        return getattr(Client(), method)(
            f"/api/v1{path}",
            data=data,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {self.token}",
        )

    def counts(self) -> dict[str, int]:
        return row_counts(in_process_sql if self.in_process else self.site.sql)


@dataclass(frozen=True)
class Attempt:
    """One bad input: how it is made, and whether it needs the real command line."""

    make: Callable[[World], Any]
    subprocess: bool = False


# --- the HR form --------------------------------------------------------------------------------


compose_data = factories.compose_form


def form(**overrides: Any) -> Attempt:
    """The compose page; what a person sees is the status and each field's errors."""

    def make(world: World) -> Any:
        response = world.hr().post("/hr/new/", compose_data(**overrides))
        errors = response.context["form"].errors if response.context else {}
        return response.status_code, {name: list(messages) for name, messages in errors.items()}

    return Attempt(make)


def on_fields(**errors: str) -> Any:
    return 400, {name: [message] for name, message in errors.items()}


def upload(data: bytes) -> Attempt:
    """The HR import page's first step (check)."""

    def make(world: World) -> Any:
        sent = SimpleUploadedFile("people.csv", data, content_type="text/csv")
        response = world.hr().post("/hr/employees/import/", {"action": "check", "file": sent})
        form_errors = response.context["form"].errors
        return response.status_code, {
            name: list(messages) for name, messages in form_errors.items()
        }

    return Attempt(make)


# --- the API ------------------------------------------------------------------------------------


announcement = factories.api_announcement


def schedule(**members: Any) -> dict[str, Any]:
    return {"schedule": {"timezone": "Europe/London", **members}}


def person(**overrides: Any) -> dict[str, Any]:
    item = {
        "email": "ann@example.com",
        "name": "Ann Lee",
        "department": "Engineering",
        "location": "London",
        "timezone": "Europe/London",
    }
    item.update(overrides)
    return item


def api(method: str, path: str, body: Any = None, *, raw: str | None = None) -> Attempt:
    def make(world: World) -> Any:
        response = world.api(method, path, body, raw)
        return response.status_code, response.json()

    return Attempt(make)


def post(body: Any) -> Attempt:
    return api("post", "/announcements", body)


def problems(*items: tuple[str | None, str] | tuple[str | None, str, int]) -> Any:
    """The API's 422: one ``{"field", "message"}`` (and ``index``) per problem."""
    detail = []
    for item in items:
        entry: dict[str, Any] = {"field": item[0], "message": item[1]}
        if len(item) == 3:
            entry["index"] = item[2]
        detail.append(entry)
    return 422, {"detail": detail}


# --- the command line ---------------------------------------------------------------------------


def command(
    *args: str, env: dict[str, str] | None = None, files: dict[str, bytes] | None = None
) -> Attempt:
    """``bulletin ARGS`` in a subprocess; FILE:name in an argument is the path of that file
    (written first). What a person sees: the exit code and stderr's lines, with paths shown as
    FILE:name."""

    def make(world: World) -> Any:
        site = world.site
        paths = {}
        for name, data in (files or {}).items():
            paths[name] = site.directory / name
            paths[name].write_bytes(data)
        argv = [_with_paths(arg, paths) for arg in args]
        saved = dict(site.env)
        site.env.update(env or {})
        try:
            result = site.run(*argv, check=False)
        finally:
            site.env.clear()
            site.env.update(saved)
        assert "Traceback" not in result.stderr
        assert result.stdout == "", "a refused command prints nothing on stdout"
        stderr = result.stderr
        for name, path in paths.items():
            stderr = stderr.replace(str(path), f"FILE:{name}")
        return result.returncode, stderr.splitlines()

    return Attempt(make, subprocess=True)


def _with_paths(arg: str, paths: dict[str, Path]) -> str:
    for name, path in paths.items():
        arg = arg.replace(f"FILE:{name}", str(path))
    return arg


def announce(*args: str, body: bytes = b"Hello **everyone**.\n", title: str = "Canteen") -> Attempt:
    return command(
        "announce", "--title", title, "--body-file", "FILE:body.md", *args, files={"body.md": body}
    )


def import_csv(data: bytes) -> Attempt:
    return command("import_employees", "FILE:staff.csv", files={"staff.csv": data})


def csv(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode("utf-8")


def rejected_rows(*lines: str) -> Any:
    count = len(lines)
    return 1, [
        *(f"FILE:staff.csv:{line}" for line in lines),
        f"bulletin import_employees: {count} bad row(s); nothing was imported",
    ]


def rejected_file(line: str) -> Any:
    return 1, [f"FILE:staff.csv:{line}", "bulletin import_employees: the file was not imported"]


def environment(**env: str) -> Attempt:
    return command("status", env=env)


def configuration_error(message: str) -> Any:
    return 2, [f"bulletin: configuration error: {message}"]


EVERY_DAY = ("--cron", "0 9 * * *", "--tz", "Europe/London")
SCOPE_LIST = ", ".join(SCOPES)

# --- the table ----------------------------------------------------------------------------------

CASES = [
    # Header injection: a line break in a title or a name would add an email header.
    pytest.param(
        form(title="Canteen\r\nBcc: everyone@example.com"),
        on_fields(title="Must be a single line (no line breaks)."),
        id="form-title-with-crlf",
    ),
    pytest.param(
        post(announcement(title="Canteen\r\nBcc: everyone@example.com")),
        problems(("title", "must be a single line (no line breaks)")),
        id="api-title-with-crlf",
    ),
    pytest.param(
        announce(*EVERY_DAY, title="Canteen\nBcc: everyone@example.com"),
        (1, ["bulletin announce: --title: must be a single line (no line breaks)"]),
        id="cli-title-with-lf",
    ),
    pytest.param(
        api("post", "/employees/bulk", [person(name="Ann\r\nBcc: everyone@example.com")]),
        problems(("name", "name must be a single line", 0)),
        id="api-employee-name-with-crlf",
    ),
    pytest.param(
        api("post", "/employees/bulk", [person(email="ann@example.com\r\nBcc: x@example.com")]),
        problems(("email", "email must be a single line", 0)),
        id="api-employee-email-with-crlf",
    ),
    pytest.param(
        import_csv(
            csv(GOOD_ROW, 'bob@example.com,"Bob\r\nBcc: everyone@example.com",Ops,Leeds,UTC')
        ),
        rejected_rows("line 3: name must be a single line"),
        id="csv-name-with-crlf",
    ),
    pytest.param(
        import_csv(csv('"bob@example.com\nBcc: x@example.com",Bob,Ops,Leeds,UTC')),
        rejected_rows("line 2: email must be a single line"),
        id="csv-email-with-lf",
    ),
    pytest.param(
        api("post", "/employees/bulk", [person(name="Ann\tLee")]),
        problems(("name", "name contains a control character", 0)),
        id="api-employee-name-with-control-character",
    ),
    # NUL: PostgreSQL cannot store it, so it is refused by name before it gets there.
    pytest.param(
        post(announcement(title="Canteen\x00")),
        problems(("title", "must not contain NUL characters")),
        id="api-title-with-nul",
    ),
    pytest.param(
        form(title="Canteen\x00"),
        on_fields(title="Null characters are not allowed."),
        id="form-title-with-nul",
    ),
    pytest.param(
        announce(*EVERY_DAY, body=b"Hello\x00"),
        (
            1,
            [
                "bulletin announce: --body-file FILE:body.md contains a NUL character "
                "(not UTF-8 text?)"
            ],
        ),
        id="cli-body-with-nul",
    ),
    # Sizes.
    pytest.param(
        form(body="x" * (MAX_BODY_CHARS + 1)),
        on_fields(body="Ensure this value has at most 100000 characters (it has 100001)."),
        id="form-body-over-100k",
    ),
    pytest.param(
        post(announcement(body="x" * (MAX_BODY_CHARS + 1))),
        problems(("body", "String should have at most 100000 characters")),
        id="api-body-over-100k",
    ),
    pytest.param(
        announce(*EVERY_DAY, body=b"x" * (MAX_BODY_CHARS + 1)),
        (
            1,
            [
                "bulletin announce: --body-file FILE:body.md has 100001 characters; "
                "at most 100000 are allowed"
            ],
        ),
        id="cli-body-over-100k",
    ),
    pytest.param(
        form(title="x" * 201),
        on_fields(title="Ensure this value has at most 200 characters (it has 201)."),
        id="form-title-over-200",
    ),
    pytest.param(
        post(announcement(title="x" * 201)),
        problems(("title", "Ensure this value has at most 200 characters (it has 201).")),
        id="api-title-over-200",
    ),
    pytest.param(
        import_csv(csv(GOOD_ROW) + b"#" * MAX_BYTES),
        rejected_file("line 1: the file is larger than 50 MiB"),
        id="csv-over-50-mib",
    ),
    pytest.param(
        upload(csv(GOOD_ROW) + b"#" * WEB_LIMIT),
        on_fields(
            file="This file is larger than 2 MiB. Import it on the server with "
            "“bulletin import_employees FILE.csv” instead."
        ),
        id="web-csv-over-2-mib",
    ),
    # Encodings.
    pytest.param(
        import_csv(csv(GOOD_ROW) + b"bob@example.com,Ren\xe9e,Ops,Paris,Europe/Paris\n"),
        rejected_file(
            "line 3: not valid UTF-8 (byte 116); save the file as “CSV UTF-8” and import it again"
        ),
        id="csv-latin-1",
    ),
    pytest.param(
        import_csv(csv(GOOD_ROW).decode().encode("utf-16")),
        rejected_file(
            "line 1: the file is UTF-16, not UTF-8; "
            "save the file as “CSV UTF-8” and import it again"
        ),
        id="csv-utf-16",
    ),
    pytest.param(
        import_csv(csv(GOOD_ROW).decode().encode("utf-16-le")),
        rejected_file(
            "line 1: contains a NUL character (a UTF-16 file?); "
            "save the file as “CSV UTF-8” and import it again"
        ),
        id="csv-utf-16-without-bom",
    ),
    # CSV shape.
    pytest.param(
        import_csv(csv(GOOD_ROW, "bob@example.com,Ray, Bob,Ops,Leeds,UTC")),
        rejected_rows(
            "line 3: 6 values, but the header has 5 columns "
            "(put a value that contains a comma in double quotes)"
        ),
        id="csv-unquoted-comma",
    ),
    pytest.param(
        import_csv(csv("ann@example.com;Ann;Eng;London;UTC", header=HEADER.replace(",", ";"))),
        rejected_file(
            "line 1: missing column(s): email, name, department, location, timezone "
            "(separate columns with commas, not semicolons)"
        ),
        id="csv-semicolons",
    ),
    pytest.param(
        import_csv(b""),
        rejected_file(
            "line 1: the file is empty; "
            "its first line must be email,name,department,location,timezone"
        ),
        id="csv-empty",
    ),
    # Emails.
    pytest.param(
        import_csv(csv(GOOD_ROW, "bob@,Bob,Ops,Leeds,UTC")),
        rejected_rows("line 3: email 'bob@' is not a valid email address"),
        id="csv-invalid-email",
    ),
    pytest.param(
        import_csv(
            csv(GOOD_ROW, "bob@example.com,Bob,Ops,Leeds,UTC", "ANN@example.com,Ann,Ops,Leeds,UTC")
        ),
        rejected_rows("line 4: duplicate of line 2 (ann@example.com)"),
        id="csv-duplicate-email-names-both-lines",
    ),
    pytest.param(
        api("post", "/employees/bulk", [person(), person(email="Ann@Example.com")]),
        problems(("email", "duplicate of item 0 (ann@example.com)", 1)),
        id="api-duplicate-email-names-both-items",
    ),
    pytest.param(
        api("post", "/employees/bulk", [person(email="ann at example.com")]),
        problems(("email", "email 'ann at example.com' is not a valid email address", 0)),
        id="api-invalid-email",
    ),
    # Zones.
    pytest.param(
        form(timezone="other", timezone_other="Mars/Base"),
        on_fields(timezone="“Mars/Base” is not a time zone Bulletin knows, e.g. Europe/London."),
        id="form-unknown-zone",
    ),
    pytest.param(
        post(announcement(**schedule(kind="cron", cron="0 9 * * *", timezone="Europe/Lndon"))),
        problems(("timezone", "unknown time zone 'Europe/Lndon'")),
        id="api-unknown-zone",
    ),
    pytest.param(
        import_csv(csv("bob@example.com,Bob,Ops,Leeds,Mars/Base")),
        rejected_rows("line 2: timezone: unknown time zone 'Mars/Base'"),
        id="csv-unknown-zone",
    ),
    pytest.param(
        command("preview", "--cron", "0 9 * * *", "--tz", "localtime"),
        (1, ["bulletin preview: unknown time zone 'localtime'"]),
        id="cli-unknown-zone",
    ),
    # Cron expressions of several kinds.
    pytest.param(
        form(repeat="custom", cron="0 9 * *"),
        on_fields(
            cron="invalid cron expression '0 9 * *': expected 5 fields "
            "(minute hour day-of-month month day-of-week), got 4"
        ),
        id="form-cron-with-four-fields",
    ),
    pytest.param(
        post(announcement(**schedule(kind="cron", cron="0 25 * * *"))),
        problems(("cron", "invalid cron expression '0 25 * * *': bad hour")),
        id="api-cron-hour-out-of-range",
    ),
    pytest.param(
        post(announcement(**schedule(kind="cron", cron="@daily"))),
        problems(
            (
                "cron",
                "invalid cron expression '@daily': @-shortcuts are not supported; "
                "write the 5 fields, e.g. '0 0 * * *'",
            )
        ),
        id="api-cron-shortcut",
    ),
    pytest.param(
        post(announcement(**schedule(kind="cron", cron="0 9 * * MON-XYZ"))),
        problems(("cron", "invalid cron expression '0 9 * * MON-XYZ': bad day-of-week")),
        id="api-cron-unknown-day-name",
    ),
    pytest.param(
        announce("--cron", "0 0 9 * * *", "--tz", "UTC"),
        (
            1,
            [
                "bulletin announce: --cron: invalid cron expression '0 0 9 * * *': expected 5 "
                "fields (minute hour day-of-month month day-of-week), got 6"
            ],
        ),
        id="cli-cron-with-seconds-field",
    ),
    # One-off times: in the past, in a DST gap, in a repeated hour.
    pytest.param(
        form(schedule_kind="once", at_local="2020-01-06T09:00", timezone="UTC"),
        on_fields(at_local="2020-01-06T09:00 in UTC is in the past."),
        id="form-one-off-in-the-past",
    ),
    pytest.param(
        post(announcement(**schedule(kind="once", at_local="2020-01-06T09:00", timezone="UTC"))),
        problems(("at_local", "2020-01-06T09:00 in UTC is in the past")),
        id="api-one-off-in-the-past",
    ),
    pytest.param(
        form(schedule_kind="once", at_local="2027-03-14T02:30", timezone="America/New_York"),
        on_fields(at_local="Choose which of the two times below you mean."),
        id="form-one-off-in-spring-gap",
    ),
    pytest.param(
        post(
            announcement(
                **schedule(kind="once", at_local="2027-03-14T02:30", timezone="America/New_York")
            )
        ),
        problems(
            (
                "at_local",
                "2027-03-14 02:30 does not exist in America/New_York (clocks jump forward); "
                "choose 2027-03-14 01:59 EST (-05:00) or 2027-03-14 03:00 EDT (-04:00)",
            )
        ),
        id="api-one-off-in-spring-gap",
    ),
    pytest.param(
        announce("--at", "2027-11-07T01:30", "--tz", "America/New_York"),
        (
            1,
            [
                "bulletin announce: --at: 2027-11-07 01:30 occurs twice in America/New_York "
                "(clocks go back); choose 2027-11-07 01:30 EDT (-04:00) "
                "or 2027-11-07 01:30 EST (-05:00)"
            ],
        ),
        id="cli-one-off-in-autumn-fold",
    ),
    pytest.param(
        post(announcement(**schedule(kind="once", at_local="next tuesday", timezone="UTC"))),
        problems(("at_local", "'next tuesday' is not a local date-time (YYYY-MM-DDTHH:MM)")),
        id="api-one-off-not-a-date",
    ),
    # Audiences and channels.
    pytest.param(
        form(audience_kind="department"),
        on_fields(department="Choose at least one department."),
        id="form-empty-department-audience",
    ),
    pytest.param(
        post(announcement(audience={"kind": "location", "values": [" ", ""]})),
        problems(("audience_values", "name at least one location this announcement is for")),
        id="api-blank-location-names",
    ),
    pytest.param(
        post(announcement(audience={"kind": "list", "employee_ids": []})),
        problems(("recipients", "a 'list' audience needs employee_ids")),
        id="api-empty-list-audience",
    ),
    pytest.param(
        announce(*EVERY_DAY, "--audience", "location:"),
        (
            1,
            [
                "bulletin announce: --audience 'location:' is not one of all, "
                "department:NAME[,NAME...], location:NAME[,NAME...]"
            ],
        ),
        id="cli-empty-location-audience",
    ),
    pytest.param(
        form(channels=["pigeon"]),
        on_fields(channels="Select a valid choice. pigeon is not one of the available choices."),
        id="form-unknown-channel",
    ),
    pytest.param(
        form(channels=[]),
        on_fields(channels="Choose at least one channel or place."),
        id="form-no-channel",
    ),
    pytest.param(
        post(announcement(channels=["email", "pigeon"])),
        problems(("channels", "unknown channel 'pigeon'; choose from email, inapp, slack")),
        id="api-unknown-channel",
    ),
    pytest.param(
        announce(*EVERY_DAY, "--channels", "fax"),
        (
            1,
            [
                "bulletin announce: --channels: unknown channel 'fax'; "
                "choose from email, inapp, slack"
            ],
        ),
        id="cli-unknown-channel",
    ),
    # API bodies: unknown members, wrong types, broken JSON.
    pytest.param(
        post(announcement(colour="red")),
        problems(("colour", "unknown field")),
        id="api-unknown-member",
    ),
    pytest.param(
        post(announcement(schedule={"kind": "cron", "cron": "0 9 * * *", "tz": "UTC"})),
        problems(("schedule.tz", "unknown field")),
        id="api-unknown-nested-member",
    ),
    pytest.param(
        api("post", "/employees/bulk", [person(phone="+44 20 7946 0000")]),
        problems(("phone", "unknown field", 0)),
        id="api-unknown-member-in-a-list-item",
    ),
    pytest.param(
        post(announcement(title=42)),
        problems(("title", "Input should be a valid string")),
        id="api-number-for-text",
    ),
    pytest.param(
        post(announcement(send_late="yes")),
        problems(("send_late", "Input should be a valid boolean")),
        id="api-string-for-boolean",
    ),
    pytest.param(
        post(announcement(misfire_grace_minutes="60")),
        problems(("misfire_grace_minutes", "Input should be a valid integer")),
        id="api-string-for-integer",
    ),
    pytest.param(
        post(announcement(channels="email")),
        problems(("channels", "Input should be a valid list")),
        id="api-string-for-list",
    ),
    pytest.param(
        post(announcement(title="   ")),
        problems(("title", "This field cannot be blank.")),
        id="api-blank-title",
    ),
    pytest.param(
        api("post", "/announcements", raw='{"title": "Canteen", '),
        (
            400,
            {
                "detail": "the request body is not valid JSON: Expecting property name "
                "enclosed in double quotes: line 1 column 22 (char 21)"
            },
        ),
        id="api-malformed-json",
    ),
    pytest.param(
        api("post", "/announcements", raw=""),
        problems((None, "a JSON body is required")),
        id="api-empty-body",
    ),
    # The command line: unknown options, bad values, missing arguments.
    pytest.param(
        announce(*EVERY_DAY, "--colour", "red"),
        (2, ["bulletin announce: error: unrecognized arguments: --colour red"]),
        id="cli-unknown-option",
    ),
    pytest.param(
        command("announce"),
        (
            2,
            [
                "bulletin announce: error: the following arguments are required: "
                "--title, --body-file, --tz"
            ],
        ),
        id="cli-missing-required-arguments",
    ),
    pytest.param(
        command("preview", "--cron", "0 9 * * *", "--tz", "UTC", "--count", "ten"),
        (2, ["bulletin preview: error: argument --count: invalid int value: 'ten'"]),
        id="cli-word-for-a-number",
    ),
    pytest.param(
        announce(*EVERY_DAY, "--grace-minutes", "-5"),
        (1, ["bulletin announce: --grace-minutes must not be negative"]),
        id="cli-negative-grace",
    ),
    pytest.param(
        command("add_place", "--channel", "fax", "--name", "HR", "--target", "x"),
        (
            2,
            [
                "bulletin add_place: error: argument --channel: invalid choice: 'fax' "
                "(choose from 'slack', 'teams', 'webhook')"
            ],
        ),
        id="cli-invalid-choice",
    ),
    pytest.param(
        command("create_api_token", "--user", "nobody", "--name", "HRIS", "--scopes", "everything"),
        (
            1,
            [
                "bulletin create_api_token: --scopes: unknown scope(s) everything; "
                f"choose from {SCOPE_LIST}"
            ],
        ),
        id="cli-unknown-scope",
    ),
    pytest.param(
        command("import_employees", "no-such-staff.csv"),
        (
            1,
            ["bulletin import_employees: cannot read no-such-staff.csv: No such file or directory"],
        ),
        id="cli-missing-file",
    ),
    # Settings.
    pytest.param(
        environment(BULLETIN_BATCH_SIZE="1.5"),
        configuration_error("BULLETIN_BATCH_SIZE must be a whole number, got '1.5'"),
        id="settings-fraction-for-a-whole-number",
    ),
    pytest.param(
        environment(BULLETIN_LEASE_SECONDS="sixty"),
        configuration_error("BULLETIN_LEASE_SECONDS must be a whole number, got 'sixty'"),
        id="settings-word-for-a-number",
    ),
    pytest.param(
        environment(BULLETIN_MAX_ATTEMPTS="0"),
        configuration_error("BULLETIN_MAX_ATTEMPTS must be positive, got '0'"),
        id="settings-zero-attempts",
    ),
    pytest.param(
        environment(BULLETIN_EMBEDDED_WORKERS="maybe"),
        configuration_error("BULLETIN_EMBEDDED_WORKERS must be true or false, got 'maybe'"),
        id="settings-unknown-boolean-word",
    ),
    pytest.param(
        environment(DATABASE_URL="mysq://bulletin@db/bulletin"),
        (
            2,
            [
                re.compile(
                    r"bulletin: configuration error: DATABASE_URL is not usable: "
                    r"Scheme 'mysq://' is unknown\..*"
                )
            ],
        ),
        id="settings-unknown-database-scheme",
    ),
    pytest.param(
        environment(DATABASE_URL="postgres://bulletin@127.0.0.1:9/bulletin"),
        (
            1,
            [
                re.compile(
                    r"bulletin status: database error: "
                    r".*127\.0\.0\.1.*port 9 failed: Connection refused.*"
                )
            ],
        ),
        id="settings-unreachable-database",
    ),
]


def _slow_if_subprocess(case: Any) -> Any:
    # Cases that start the real command are slow, as the suite's other subprocess tests are.
    attempt: Attempt = case.values[0]
    if not attempt.subprocess:
        return case
    return pytest.param(*case.values, marks=[*case.marks, pytest.mark.slow], id=case.id)


CASES = [_slow_if_subprocess(case) for case in CASES]


def _matches(seen: Any, expected: Any) -> bool:
    """Equality, where a compiled pattern in ``expected`` stands for a whole line it matches
    (for text a third party words: a driver's error, a library's list of schemes)."""
    if isinstance(expected, re.Pattern):
        return isinstance(seen, str) and expected.fullmatch(seen) is not None
    if isinstance(expected, (list, tuple)) and isinstance(seen, (list, tuple)):
        return len(seen) == len(expected) and all(map(_matches, seen, expected))
    return bool(seen == expected)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    directory = tmp_path_factory.mktemp("bad-input")
    with own_database(directory) as url:
        yield installation_at(directory, url)


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.parametrize(("attempt", "expected"), CASES)
def test_bad_input_is_refused_with_a_specific_message_and_nothing_is_written(
    attempt: Attempt, expected: Any, request: pytest.FixtureRequest, db: None
) -> None:
    if attempt.subprocess:
        world = World(request, in_process=False, _site=request.getfixturevalue("site"))
    else:
        world = World(request, in_process=True)
        assert world.token  # the administrator and the API token exist before counting
    before = world.counts()

    seen = attempt.make(world)

    assert _matches(seen, expected), f"saw {seen!r}"
    assert world.counts() == before


# --- accepted, but made harmless -----------------------------------------------------------------

SCRIPTED_BODY = "\n".join(
    [
        "Hello {{ name }}, **bold** and [the handbook](https://example.com/handbook).",
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(2)"> <a href="javascript:alert(3)" onclick="alert(4)">a</a>',
        "[link](javascript:alert(5)) [LINK](JaVaScRiPt:alert(6))",
        "[entity](&#106;avascript:alert(7)) ![image](javascript:alert(8)) <javascript:alert(9)>",
        "[data](data:text/html;base64,PHNjcmlwdD4=)",
        "<iframe src=https://evil.example></iframe><style>body{}</style>",
    ]
)
DANGEROUS_TAGS = {"script", "iframe", "style", "object", "embed", "img", "svg", "math", "form"}
DANGEROUS_SCHEMES = ("javascript:", "vbscript:", "data:")


class ActiveContent(HTMLParser):
    """Whatever in a piece of HTML a browser would run or load: script-like elements, event
    handler attributes, and links with a scheme that runs code."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.links: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DANGEROUS_TAGS:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            target = "".join((value or "").split()).lower()
            if name.startswith("on"):
                self.found.append(f"{tag} {name}=")
            elif name in ("href", "src", "action", "formaction", "xlink:href"):
                self.links.append(target)
                if target.startswith(DANGEROUS_SCHEMES):
                    self.found.append(f"{tag} {name}={target}")


def test_script_in_a_markdown_body_is_stored_as_typed_and_sent_as_inert_html(
    smtp_settings: SmtpSink, ada: Any
) -> None:
    _, token = ApiToken.issue(ada, "tests", list(SCOPES))
    created = Client().post(
        "/api/v1/announcements",
        data=json.dumps(announcement(body=SCRIPTED_BODY, channels=["email", "inapp"])),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert created.status_code == 201, created.content
    assert Announcement.objects.get(pk=created.json()["id"]).body == SCRIPTED_BODY

    factories.employees(1)
    Employee.objects.update(name='<img src=x onerror="alert(10)">')
    factories.fired(body=SCRIPTED_BODY, channels=("email", "inapp"))
    Dispatcher().run_until_idle()

    [received] = smtp_settings.received
    html_part = received.message.get_body(("html",))
    assert html_part is not None
    email_html = html_part.get_content()
    inbox_html = InboxItem.objects.get().html
    # The email's one <style> is its layout's own (phones, dark mode), in its <head>: the
    # body's <style> is gone like the rest.
    assert email_html.count("<style") == 1
    assert email_html.index("<style>") < email_html.index("</head>")
    for html, layout in ((email_html, ["<style>"]), (inbox_html, [])):
        content = ActiveContent(html)
        assert content.found == layout, html
        assert "https://example.com/handbook" in content.links  # sanitised, not emptied
        assert "<strong>bold</strong>" in html
        assert "&lt;img src=x onerror=" in html  # the name, shown as text


# --- accepted as it should be --------------------------------------------------------------------


@pytest.mark.slow
def test_a_csv_saved_with_a_utf8_byte_order_mark_imports_on_the_command_line(
    site: Installation,
) -> None:
    path = site.directory / "bom.csv"
    path.write_bytes(codecs.BOM_UTF8 + csv("bom@example.com,Bo Moss,Ops,Leeds,Europe/London"))

    result = site.run("import_employees", str(path))

    assert result.stdout.splitlines()[0] == "imported: 1 created, 0 updated, 0 unchanged"
    assert site.sql(
        "SELECT name, timezone FROM bulletin_employee WHERE email = ?", ("bom@example.com",)
    ) == [("Bo Moss", "Europe/London")]


def test_an_email_already_on_file_is_updated_in_place_whatever_its_case(db: None) -> None:
    Employee.objects.create(email="ann@example.com", name="Ann Old", timezone="UTC")

    report = import_employees(csv("ANN@Example.com,Ann Lee,Engineering,London,Europe/London"))

    assert (report.created, report.updated) == (0, 1)
    assert list(Employee.objects.values_list("email", "name", "timezone")) == [
        ("ann@example.com", "Ann Lee", "Europe/London")
    ]
