"""Hypothesis properties for the parsers: cron expressions, zone names and local date-times,
the employee CSV import, and the Markdown renderer. Whatever comes in is either accepted as
meant or refused with the parser's own error, never a traceback; rendered Markdown never carries
a script.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from hypothesis import example, given
from hypothesis import strategies as st

from bulletin.channels.base import Recipient
from bulletin.channels.render import render_html
from bulletin.dispatch.announcements import parse_local
from bulletin.domain.models import Employee
from bulletin.interfaces.roster import (
    ImportRejected,
    import_employees,
    preview_employees,
    read_rows,
    validate_rows,
)
from bulletin.scheduling.rules import (
    CronRule,
    ScheduleError,
    fire_times,
    next_fire_after,
    parse_zone,
)
from tests.strategies import (
    ALL_ZONES,
    Cron,
    crons,
    properties,
)

# --- The cron and zone parsers ---------------------------------------------------------------

# Field values no cron accepts in any position (out of range, malformed, non-ASCII digits).
GARBAGE_FIELDS = st.one_of(
    st.sampled_from(["?", "a", "1-", "-1", "*/0", "5-1", "1,,2", "1/2/3", "#", "*-*", "**"]),
    st.sampled_from(["\u0663", "\uff13", "\u00b3", "1\u0661", "\u0663-5", "\u017fun", "fr\u0131"]),
    st.integers(60, 10**6).map(str),
)
OUT_OF_RANGE = {0: "60", 1: "24", 2: "32", 3: "13", 4: "8"}


@properties(examples=200)
@given(text=st.text(max_size=40))
@example(text="0" * 5000 + " * * * *")
@example(text="@daily")
def test_any_text_is_either_a_cron_rule_or_one_schedule_error_line(text: str) -> None:
    try:
        rule = CronRule(text)
    except ScheduleError as exc:
        message = str(exc)
        assert message.startswith("invalid cron expression") and "\n" not in message
    else:
        assert len(rule.expr.split()) == 5
        next_fire_after(rule, ZoneInfo("UTC"), datetime(2030, 1, 1, tzinfo=UTC))


@properties(examples=100)
@given(cron=crons(), position=st.integers(0, 4), junk=GARBAGE_FIELDS)
def test_a_generated_cron_expression_with_one_field_spoiled_is_refused(
    cron: Cron, position: int, junk: str
) -> None:
    parts = cron.expr.split()
    parts[position] = junk
    with pytest.raises(ScheduleError, match="invalid cron expression"):
        CronRule(" ".join(parts))


@pytest.mark.parametrize("position, value", sorted(OUT_OF_RANGE.items()))
def test_a_value_just_out_of_a_fields_range_is_refused(position: int, value: str) -> None:
    parts = ["0", "0", "1", "1", "0"]
    parts[position] = value
    with pytest.raises(ScheduleError, match="invalid cron expression"):
        CronRule(" ".join(parts))


def test_a_stepped_range_of_one_value_fires_at_that_value_only() -> None:
    # Found by the fire-to-fire property: cronsim alone reads "0-0/5" as every 5 minutes.
    rule = CronRule("0-0/5 * * * *")
    fires = fire_times(rule, ZoneInfo("UTC"), datetime(2030, 1, 1, tzinfo=UTC), limit=3)
    assert [(fire.utc.hour, fire.utc.minute) for fire in fires] == [(1, 0), (2, 0), (3, 0)]


@pytest.mark.parametrize("expr", ["0 0 * * \u017fun", "0 0 * * fr\u0131", "0 0 * \u017fep *"])
def test_a_non_ascii_letter_that_upper_cases_to_a_cron_name_is_refused(expr: str) -> None:
    # str.upper() turns a long s (U+017F) into S and a dotless i (U+0131) into I, so these read
    # as SUN, FRI and SEP to cronsim, which upper-cases before matching names.
    with pytest.raises(ScheduleError, match="ASCII"):
        CronRule(expr)


def test_a_cron_number_too_long_for_int_is_refused_with_a_schedule_error() -> None:
    # int() refuses strings of more than 4300 digits with a bare ValueError.
    with pytest.raises(ScheduleError, match="bad minute"):
        CronRule("0" * 5000 + " * * * *")


@properties(examples=100)
@given(name=st.one_of(st.text(max_size=30), st.sampled_from(ALL_ZONES).map(str.lower)))
@example(name="UTC\x00")
@example(name="../../etc/passwd")
def test_any_zone_name_is_either_a_zone_or_a_schedule_error(name: str) -> None:
    try:
        zone = parse_zone(name)
    except ScheduleError as exc:
        assert str(exc).startswith("unknown time zone")
    else:
        assert zone.key == name


@properties(examples=150)
@given(text=st.text(max_size=30) | st.datetimes().map(datetime.isoformat))
@example(text="2026-03-08T02:30+01:00")
@example(text="2026-13-01T09:00")
def test_any_text_is_either_a_local_date_time_or_one_schedule_error(text: str) -> None:
    try:
        at = parse_local(text)
    except ScheduleError as exc:
        assert str(exc).startswith(f"'{text}'")
    else:
        assert at.tzinfo is None and at.second == at.microsecond == 0


# --- The employee CSV import ------------------------------------------------------------------


@properties(examples=200)
@given(data=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
@example(data=b"email,name,department,location,timezone\n\xff")
@example(data=b'email,name,department,location,timezone\n"a@b.test,"x')
def test_arbitrary_bytes_are_read_or_rejected_with_line_numbered_errors(data: bytes) -> None:
    try:
        validate_rows(read_rows(data))
    except ImportRejected as exc:
        lines = data.count(b"\n") + data.count(b"\r") + 1
        assert exc.errors and all(1 <= e.line <= lines and e.message for e in exc.errors)


CELL = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
REQUIRED_COLUMNS = ["email", "name", "department", "location", "timezone"]


@st.composite
def csv_like(draw: st.DrawFn) -> bytes:
    """The required header (any case and order, maybe more columns) over rows of hostile cells."""
    extra = draw(st.lists(st.sampled_from(["active", "email"]) | CELL, max_size=2))
    header = draw(st.permutations(REQUIRED_COLUMNS + extra))
    header = [name.upper() if draw(st.booleans()) else name for name in header]
    rows = draw(st.lists(st.lists(CELL | st.sampled_from(ALL_ZONES), max_size=8), max_size=5))
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    return out.getvalue().encode()


@pytest.mark.django_db
@properties(examples=60)
@given(data=csv_like())
def test_csv_shaped_hostile_files_are_previewed_or_rejected_never_crash(data: bytes) -> None:
    with transaction.atomic():
        try:
            preview_employees(data)
        except ImportRejected as exc:
            assert all(error.line >= 1 and "\n" not in error.message for error in exc.errors)
        transaction.set_rollback(True)


def trimmed(text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return text.map(str.strip)


TEXT = st.characters(codec="utf-8", exclude_categories=["Cc", "Cs", "Zl", "Zp"])


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    department: str
    location: str
    timezone: str
    active: str  # as written in the file; "" when the column is absent


EMAILS = st.from_regex(
    r"[A-Za-z0-9]{1,10}(\.[a-z0-9]{1,5})?@[a-z]{1,8}\.(com|org|test)", fullmatch=True
)
PLACES = st.sampled_from(["Paris, FR", 'The "Hub"', "Zürich", ""]) | st.text(TEXT, max_size=20)
PEOPLE = st.builds(
    Person,
    email=EMAILS,
    name=trimmed(st.text(TEXT, min_size=1, max_size=40)).filter(bool),
    department=trimmed(st.text(TEXT, max_size=30)),
    location=trimmed(PLACES),
    timezone=st.sampled_from(ALL_ZONES),
    active=st.sampled_from(["yes", "no", "TRUE", "false", "1", "0", "Y", "n", ""]),
)


@dataclass(frozen=True)
class RosterFile:
    people: tuple[Person, ...]
    data: bytes
    has_active: bool


@st.composite
def roster_files(draw: st.DrawFn) -> RosterFile:
    people = draw(st.lists(PEOPLE, min_size=1, max_size=6, unique_by=lambda p: p.email.lower()))
    columns = ["email", "name", "department", "location", "timezone", "active", "employee id"]
    columns = draw(st.permutations(columns))
    has_active = draw(st.booleans())
    columns = [c for c in columns if c != "active" or has_active]
    out = io.StringIO()
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    writer = csv.writer(out, quoting=quoting, lineterminator=draw(st.sampled_from(["\r\n", "\n"])))
    writer.writerow([c.title() if draw(st.booleans()) else c for c in columns])
    for person in people:
        cells = {**vars(person), "employee id": "E-1, E-2"}
        writer.writerow([cells[c] for c in columns])
    bom = "\ufeff" if draw(st.booleans()) else ""
    return RosterFile(tuple(people), (bom + out.getvalue()).encode(), has_active)


def stored(person: Person, has_active: bool) -> tuple[str, str, str | None, str, bool]:
    active = person.active.lower() not in {"0", "false", "no", "n"} if has_active else True
    # An empty location cell is no location (NULL), not a location called "".
    return (person.name, person.department, person.location or None, person.timezone, active)


@pytest.mark.django_db
@properties(examples=40)
@given(roster=roster_files())
@example(
    roster=RosterFile(
        (Person("Zoe@Example.test", "Núñez, Zoë", "R&D", 'The "Hub"', "Asia/Tehran", ""),),
        '\ufeffemail,name,department,location,timezone\r\nZoe@Example.test,"Núñez, Zoë",R&D,'
        '"The ""Hub""",Asia/Tehran\r\n'.encode(),
        has_active=False,
    )
)
def test_a_generated_roster_imports_to_exactly_those_employees_and_again_changes_nothing(
    roster: RosterFile,
) -> None:
    with transaction.atomic():
        report = import_employees(roster.data)
        assert report.created == len(roster.people)
        rows = Employee.objects.values_list(
            "email", "name", "department", "location", "timezone", "active"
        )
        assert {email: tuple(rest) for email, *rest in rows} == {
            p.email.lower(): stored(p, roster.has_active) for p in roster.people
        }
        assert import_employees(roster.data).unchanged == len(roster.people)
        transaction.set_rollback(True)


# --- The Markdown renderer --------------------------------------------------------------------

HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//x.test/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)" onclick="alert(1)">x</a>',
    "<svg/onload=alert(1)>",
    "<iframe src=javascript:alert(1)></iframe>",
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](&#x6A;avascript&colon;alert(1))",
    "[x](java&#x09;script:alert(1))",
    "[x](<javascript:alert(1)>)",
    "[x]( javascript:alert(1) )",
    "![x](javascript:alert(1))",
    "<javascript:alert(1)>",
    "[x][r]\n\n[r]: javascript:alert(1)\n",
    "[x](vbscript:msgbox(1))",
    '<div style="background:url(javascript:alert(1))">',
    "<!-- --><script>alert(1)</script><!-- -->",
    "```\n</code><script>alert(1)</script>\n```",
    "`<script>`",
    "| a | [x](javascript:alert(1)) |\n|---|---|\n| <b onmouseover=alert(1)>b</b> | c |",
    "~~<script>~~",
    "*<script>*",
    "<math><mi xlink:href=javascript:alert(1)>x</mi></math>",
    "{{name}}",
    "{{ first_name }}",
    "[x]({{name}})",
    '[x](https://a.test "{{name}}")',
    "<{{email}}>",
    "![{{name}}](https://a.test/i.png)",
    '"><script>alert(1)</script>',
    "javascript:alert(1)",
]
BODY_PIECES = st.sampled_from(HOSTILE) | st.text(max_size=10)
JOINERS = st.sampled_from(["", " ", "\n", "\n\n", "\n> ", "\n- ", "\n# ", "\t"])
HOSTILE_NAMES = ['<script>alert("x")</script>', '" onmouseover="alert(1)', "javascript:alert(1)"]
NAMES = st.sampled_from([*HOSTILE_NAMES, "Ann"]) | st.text(max_size=15)
# Attributes a browser follows as a URL: text in title or alt that reads "javascript:" is inert.
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "poster", "background"}


@st.composite
def hostile_bodies(draw: st.DrawFn) -> str:
    pieces = draw(st.lists(BODY_PIECES, min_size=1, max_size=6))
    return "".join(piece + draw(JOINERS) for piece in pieces)


class Tags(HTMLParser):
    """The start tags of an HTML fragment, with their attributes as a browser would read them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def dangerous(output: str) -> list[str]:
    parser = Tags()
    parser.feed(output)
    parser.close()
    problems = ["<script"] if "<script" in output.lower() else []
    for tag, attrs in parser.found:
        problems += [tag] if tag in {"script", "iframe", "object", "embed", "svg", "math"} else []
        for name, value in attrs:
            # Browsers ignore whitespace and control characters inside a URL's scheme.
            squeezed = "".join(c for c in (value or "") if c > " ").lower()
            scripted = squeezed.startswith(("javascript:", "vbscript:"))
            if name.startswith("on") or (name in URL_ATTRIBUTES and scripted):
                problems.append(f"{tag} {name}={value!r}")
    return problems


@properties(examples=200)
@given(body=hostile_bodies(), name=NAMES)
def test_rendered_markdown_never_carries_a_script_an_event_handler_or_a_javascript_url(
    body: str, name: str
) -> None:
    output = render_html(body, Recipient(email=name, name=name, timezone="UTC"))
    assert dangerous(output) == []
