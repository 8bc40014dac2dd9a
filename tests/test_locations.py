"""Locations and leave through every way in but the HR screens: the CSV import (command and
roster), the HRIS API (locations, bulk upsert), the announcement API's working hours and
send-now, the command line and the admin.

Held deliveries are made the real way: people in a location with a working week, an
announcement within working hours, fanned out by the planner at a moment outside the window.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from bulletin.dispatch.planning import tick
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import (
    Announcement,
    AuditEvent,
    Delivery,
    DeliveryState,
    Employee,
    Location,
)
from bulletin.domain.records import AuditAction
from bulletin.domain.roles import ADMINISTRATOR, ANNOUNCER
from bulletin.interfaces.roster import import_employees, preview_employees
from tests import factories
from tests.test_api import Api, api_for, user_with_role
from tests.test_roster import HEADER, csv_bytes, rejected

pytestmark = pytest.mark.django_db


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# --- the CSV import ------------------------------------------------------------------------

WITH_LOCATION = f"{HEADER},country,subdivision,working_week"


def test_a_new_location_is_created_in_its_first_rows_zone_with_the_region_and_week_given() -> None:
    report = import_employees(
        csv_bytes(
            "ann@example.com,Ann,Eng,Pune,Asia/Kolkata,in,mh,mon-sat 9:00-17:00",
            "raj@example.com,Raj,Eng,Pune,Europe/London,,,",  # works remotely, from London
            header=WITH_LOCATION,
        )
    )

    pune = Location.objects.get()
    assert (pune.name, pune.timezone, pune.country, pune.subdivision, pune.working_week) == (
        "Pune",
        "Asia/Kolkata",
        "IN",
        "MH",
        "Mon-Sat 09:00-17:00",
    )
    assert set(Employee.objects.values_list("email", "location", "timezone")) == {
        ("ann@example.com", "Pune", "Asia/Kolkata"),
        ("raj@example.com", "Pune", "Europe/London"),
    }
    assert report.locations == ["new location Pune (Asia/Kolkata)"]


def test_a_row_naming_an_existing_location_matches_it_and_changes_only_what_it_says() -> None:
    factories.location(
        "Leeds",
        zone="Europe/London",
        country="GB",
        subdivision="ENG",
        working_week="Mon-Fri 09:00-17:00",
    )

    report = import_employees(
        csv_bytes("ann@example.com,Ann,Eng,Leeds,UTC,,,Mon-Thu 08:00-16:00", header=WITH_LOCATION)
    )

    leeds = Location.objects.get()
    assert (leeds.timezone, leeds.country, leeds.subdivision, leeds.working_week) == (
        "Europe/London",  # a row's zone is the person's, never the location's once it exists
        "GB",
        "ENG",
        "Mon-Thu 08:00-16:00",
    )
    assert report.locations == [
        "location Leeds: working_week Mon-Fri 09:00-17:00 → Mon-Thu 08:00-16:00"
    ]


def test_a_new_country_without_a_subdivision_drops_the_old_countrys_subdivision() -> None:
    factories.location("Remote", country="IN", subdivision="MH")

    import_employees(csv_bytes("ann@example.com,Ann,Eng,Remote,UTC,FR", header=f"{HEADER},country"))

    remote = Location.objects.get()
    assert (remote.country, remote.subdivision) == ("FR", "")


def test_an_empty_timezone_takes_the_zone_of_the_employees_location() -> None:
    factories.location("Pune", zone="Asia/Kolkata")

    import_employees(csv_bytes("ann@example.com,Ann,Eng,Pune,"))

    assert Employee.objects.get().timezone == "Asia/Kolkata"


def test_away_until_is_stored_an_empty_cell_clears_it_and_a_file_without_the_column_keeps_it() -> (
    None
):
    header = f"{HEADER},away_until"
    import_employees(csv_bytes("ann@example.com,Ann,Eng,Leeds,UTC,2027-01-15", header=header))
    assert Employee.objects.get().away_until == date(2027, 1, 15)

    import_employees(csv_bytes("ann@example.com,Ann Lee,Eng,Leeds,UTC"))  # no column
    assert Employee.objects.get().away_until == date(2027, 1, 15)

    import_employees(csv_bytes("ann@example.com,Ann Lee,Eng,Leeds,UTC,", header=header))
    assert Employee.objects.get().away_until is None


@pytest.mark.parametrize("cell", ["15/01/2027", "2027-02-30", "20270115", "next week"])
def test_an_away_until_that_is_not_a_date_is_refused_with_its_line(cell: str) -> None:
    data = csv_bytes(f"ann@example.com,Ann,Eng,Leeds,UTC,{cell}", header=f"{HEADER},away_until")

    assert rejected(data) == [(2, f"away_until '{cell}' is not a date (YYYY-MM-DD)")]


def test_an_unknown_country_is_refused_naming_line_field_and_code_and_nothing_is_imported() -> None:
    data = csv_bytes(
        "ann@example.com,Ann,Eng,Leeds,Europe/London,GB",
        "bob@example.com,Bob,Eng,Atlantis,UTC,XX",
        header=f"{HEADER},country",
    )

    assert rejected(data) == [(3, "country: unknown country code 'XX' (ISO 3166-1 alpha-2)")]
    assert not Employee.objects.exists() and not Location.objects.exists()


def test_an_unknown_subdivision_is_refused_naming_it_and_its_country() -> None:
    data = csv_bytes(
        "ann@example.com,Ann,Eng,Pune,Asia/Kolkata,IN,ZZ", header=f"{HEADER},country,subdivision"
    )

    assert rejected(data) == [(2, "subdivision: unknown subdivision code 'ZZ' for country 'IN'")]
    assert not Location.objects.exists()


def test_a_subdivision_alone_is_checked_against_the_existing_locations_country() -> None:
    factories.location("Pune", zone="Asia/Kolkata", country="IN", subdivision="MH")
    data = csv_bytes("ann@example.com,Ann,Eng,Pune,,ENG", header=f"{HEADER},subdivision")

    assert rejected(data) == [(2, "subdivision: unknown subdivision code 'ENG' for country 'IN'")]
    assert Location.objects.get().subdivision == "MH"


def test_two_rows_disagreeing_about_one_location_are_refused_naming_both_lines() -> None:
    data = csv_bytes(
        "ann@example.com,Ann,Eng,Pune,Asia/Kolkata,IN,Mon-Fri 09:00-17:00",
        "bob@example.com,Bob,Eng,Pune,Asia/Kolkata,IN,mon-fri 9:00-17:00",  # the same week
        "cy@example.com,Cy,Eng,Pune,Asia/Kolkata,IN,Mon-Sat 09:00-17:00",
        header=f"{HEADER},country,working_week",
    )

    [(line, message)] = rejected(data)

    assert line == 4
    assert message == (
        "location 'Pune': working_week 'Mon-Sat 09:00-17:00' disagrees with line 2 "
        "('Mon-Fri 09:00-17:00')"
    )
    assert not Employee.objects.exists()


def test_a_working_week_that_cannot_be_read_is_refused_with_its_line_and_field() -> None:
    data = csv_bytes(
        "ann@example.com,Ann,Eng,Pune,UTC,Mon-Fri 18:00-08:00", header=f"{HEADER},working_week"
    )

    [(line, message)] = rejected(data)

    assert line == 2 and message.startswith("working_week: ") and "18:00-08:00" in message


def test_the_dry_run_hr_reviews_lists_the_location_changes_and_writes_none() -> None:
    factories.location("Leeds", zone="Europe/London")
    data = csv_bytes(
        "ann@example.com,Ann,Eng,Leeds,,GB",
        "bob@example.com,Bob,Eng,Pune,Asia/Kolkata,IN",
        header=f"{HEADER},country",
    )

    report = preview_employees(data)

    assert report.locations == [
        "new location Pune (Asia/Kolkata)",
        "location Leeds: country - → GB",
    ]
    assert [row.action for row in report.rows] == ["create", "create"]
    assert list(Location.objects.values_list("name", "country")) == [("Leeds", "")]


# --- the API: locations and the bulk upsert --------------------------------------------------


@pytest.fixture
def admin_api(django_user_model: Any) -> Api:
    return api_for(user_with_role(django_user_model, "admin", ADMINISTRATOR))


@pytest.fixture
def announcer_api(django_user_model: Any) -> Api:
    return api_for(user_with_role(django_user_model, "announcer", ANNOUNCER))


PUNE = {"name": "Pune", "timezone": "Asia/Kolkata", "country": "in", "subdivision": "MH"}


def test_a_location_is_created_read_found_by_name_and_changed_through_the_api(
    admin_api: Api,
) -> None:
    created = admin_api.post("/locations", {**PUNE, "working_week": "Mon-Sat 09:00-17:00"})
    assert created.status_code == 201, created.content
    body = created.json()
    assert {k: body[k] for k in (*PUNE, "working_week", "employees")} == {
        **PUNE,
        "country": "IN",
        "working_week": "Mon-Sat 09:00-17:00",
        "employees": 0,
    }
    factories.employees(2, zone="Asia/Kolkata", location="Pune")

    assert admin_api.get(f"/locations/{body['id']}").json()["employees"] == 2
    assert admin_api.get("/locations", name="Pune").json()["items"][0]["id"] == body["id"]
    changed = admin_api.patch(f"/locations/{body['id']}", {"country": "FR"})
    assert changed.status_code == 200, changed.content
    assert (changed.json()["country"], changed.json()["subdivision"]) == ("FR", "")
    assert Location.objects.get().country == "FR"


def test_a_location_without_a_working_week_gets_the_installations(admin_api: Api) -> None:
    created = admin_api.post("/locations", {"name": "Leeds", "timezone": "Europe/London"})

    assert created.json()["working_week"] == "Mon-Fri 08:00-18:00"


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({**PUNE, "country": "XX", "subdivision": ""}, "country", "'XX'"),
        ({**PUNE, "subdivision": "ZZ"}, "subdivision", "'ZZ'"),
        ({**PUNE, "timezone": "Mars/Base"}, "timezone", "'Mars/Base'"),
        ({**PUNE, "working_week": "Mon-Fri 18:00-08:00"}, "working_week", "18:00-08:00"),
    ],
    ids=["country", "subdivision", "zone", "working-week"],
)
def test_a_bad_code_or_week_is_a_422_naming_its_field_and_creates_nothing(
    admin_api: Api, body: dict[str, str], field: str, code: str
) -> None:
    response = admin_api.post("/locations", body)

    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["field"] == field and code in problem["message"]
    assert not Location.objects.exists()


def test_a_bad_code_in_a_change_is_a_422_naming_its_field_and_changes_nothing(
    admin_api: Api,
) -> None:
    pune = factories.location("Pune", zone="Asia/Kolkata", country="IN", subdivision="MH")

    response = admin_api.patch(f"/locations/{pune.pk}", {"subdivision": "ZZ"})

    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "subdivision"
    pune.refresh_from_db()
    assert pune.subdivision == "MH"


def test_a_second_location_with_a_taken_name_is_a_422_on_name(admin_api: Api) -> None:
    factories.location("Pune")

    response = admin_api.post("/locations", PUNE)

    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "name"


def test_a_location_with_employees_keeps_its_name_and_an_empty_one_may_be_renamed(
    admin_api: Api,
) -> None:
    factories.employees(1, location="Bombay")
    bombay, empty = Location.objects.get(), factories.location("Poona")

    refused = admin_api.patch(f"/locations/{bombay.pk}", {"name": "Mumbai"})
    renamed = admin_api.patch(f"/locations/{empty.pk}", {"name": "Pune"})

    # A conflict with the location's state (its employees), not a bad value: 409.
    assert refused.status_code == 409 and "has 1 employee(s)" in refused.json()["detail"]
    assert renamed.status_code == 200
    assert sorted(Location.objects.values_list("name", flat=True)) == ["Bombay", "Pune"]


def test_an_announcer_may_read_locations_but_not_write_them(announcer_api: Api) -> None:
    assert announcer_api.get("/locations").status_code == 200
    assert announcer_api.post("/locations", PUNE).status_code == 403
    assert not Location.objects.exists()


def test_the_bulk_upsert_creates_the_location_by_name_and_sets_and_clears_away_until(
    admin_api: Api,
) -> None:
    person = {"email": "ann@example.com", "name": "Ann", "department": "Eng"}
    person.update(location="Pune", timezone="Asia/Kolkata")

    first = admin_api.post("/employees/bulk", [{**person, "away_until": "2027-01-15"}])
    assert first.json() == {"created": 1, "updated": 0, "unchanged": 0}
    [shown] = admin_api.get("/employees", location="Pune").json()["items"]
    assert (shown["location"], shown["away_until"]) == ("Pune", "2027-01-15")
    assert Location.objects.get().timezone == "Asia/Kolkata"

    assert admin_api.post("/employees/bulk", [person]).json()["unchanged"] == 1  # left alone
    admin_api.post("/employees/bulk", [{**person, "away_until": None}])
    assert Employee.objects.get().away_until is None


def test_employees_are_listed_by_location_name_and_without_one_by_an_empty_name(
    admin_api: Api,
) -> None:
    factories.employees(2, location="Leeds")
    factories.employees(1, prefix="nomad")

    in_leeds = admin_api.get("/employees", location="Leeds").json()["items"]
    nowhere = admin_api.get("/employees", location="").json()["items"]

    assert {e["location"] for e in in_leeds} == {"Leeds"} and len(in_leeds) == 2
    assert [(e["email"], e["location"]) for e in nowhere] == [("nomad0@example.com", "")]


def test_the_bulk_upsert_refuses_a_bad_away_until_by_index_and_field(admin_api: Api) -> None:
    person = {"email": "ann@example.com", "name": "Ann", "department": "Eng", "location": ""}

    response = admin_api.post(
        "/employees/bulk", [{**person, "timezone": "UTC", "away_until": "soon"}]
    )

    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert (problem["index"], problem["field"]) == (0, "away_until")
    assert not Employee.objects.exists()


# --- announcements: within working hours, held, sent now -------------------------------------

SATURDAY_10 = utc(2027, 1, 9, 10)  # Sat 9 Jan 2027, 10:00 in Leeds
MONDAY_9 = utc(2027, 1, 11, 9)


def held_announcement() -> Announcement:
    """Three people in Leeds (Mon-Fri 09:00-17:00) and a one-off on a Saturday morning,
    within working hours, fanned out by the planner then: all three held until Monday."""
    factories.location("Leeds", zone="Europe/London", country="GB", subdivision="ENG")
    Location.objects.filter(name="Leeds").update(working_week="Mon-Fri 09:00-17:00")
    factories.employees(3, zone="Europe/London", location="Leeds")
    with time_machine.travel(utc(2027, 1, 8, 12), tick=False):
        item = factories.announcement(
            now=utc(2027, 1, 8, 12), at="2027-01-09T10:00", zone="Europe/London", working_hours=True
        )
    with time_machine.travel(SATURDAY_10, tick=False):
        tick()
    return item


def test_a_weekend_fan_out_holds_each_delivery_until_monday_with_its_reason() -> None:
    item = held_announcement()

    rows = Delivery.objects.filter(occurrence__announcement=item)
    assert {(d.state, d.due_at, d.hold_reason) for d in rows} == {
        (DeliveryState.HELD, MONDAY_9, "weekend")
    }


def test_working_hours_round_trips_through_the_announcement_api(announcer_api: Api) -> None:
    body = {
        "title": "Canteen",
        "body": "Open.",
        "channels": ["email"],
        "schedule": {"kind": "cron", "cron": "0 9 * * 1-5", "timezone": "Europe/London"},
        "working_hours": True,
    }

    created = announcer_api.post("/announcements", body)
    assert created.status_code == 201, created.content
    assert created.json()["working_hours"] is True
    item_id = created.json()["id"]
    assert Announcement.objects.get(pk=item_id).working_hours is True
    patched = announcer_api.patch(f"/announcements/{item_id}", {"working_hours": False})
    assert patched.json()["working_hours"] is False
    assert announcer_api.get(f"/announcements/{item_id}").json()["working_hours"] is False
    assert (
        announcer_api.patch(f"/announcements/{item_id}", {"working_hours": "yes"}).status_code
        == 422
    )


def test_held_deliveries_are_listed_with_their_reason_and_sent_now_through_the_api(
    announcer_api: Api,
) -> None:
    item = held_announcement()

    listed = announcer_api.get("/deliveries", state="held", announcement_id=item.pk).json()
    assert listed["count"] == 3
    assert {(d["state"], d["hold_reason"]) for d in listed["items"]} == {("held", "weekend")}
    assert announcer_api.get(f"/announcements/{item.pk}").json()["deliveries"]["held"] == 3
    assert Dispatcher().run_until_idle() == 0  # held: nothing goes before Monday

    response = announcer_api.post(f"/announcements/{item.pk}/send-now")

    assert response.status_code == 200 and response.json() == {"released": 3}
    assert Dispatcher().run_until_idle() == 3
    assert Dispatcher().run_until_idle() == 0
    assert sorted(m.to[0] for m in mail.outbox) == [
        f"Person {n} <person{n}@example.com>" for n in range(3)
    ]
    event = AuditEvent.objects.get(announcement=item, action=AuditAction.RELEASED)
    assert event.detail["deliveries"] == 3
    assert announcer_api.post(f"/announcements/{item.pk}/send-now").json() == {"released": 0}


def test_send_now_for_an_announcement_that_does_not_exist_is_a_404(announcer_api: Api) -> None:
    response = announcer_api.post("/announcements/999999/send-now")

    assert response.status_code == 404 and "999999" in response.json()["detail"]


# --- the command line ------------------------------------------------------------------------


def test_announce_with_working_hours_delivers_within_them(tmp_path: Any) -> None:
    item = factories.announce_cli(
        tmp_path, "--cron", "0 9 * * 1-5", "--tz", "Europe/London", "--working-hours"
    )
    plain = factories.announce_cli(tmp_path, "--cron", "0 9 * * 1-5", "--tz", "Europe/London")

    assert (item.working_hours, plain.working_hours) == (True, False)


def test_send_now_on_the_command_line_releases_the_held_deliveries_and_says_how_many() -> None:
    item = held_announcement()
    out = io.StringIO()

    call_command("send_now", str(item.pk), stdout=out)

    assert out.getvalue().strip() == "released 3 held deliveries"
    assert not Delivery.objects.filter(state=DeliveryState.HELD).exists()
    event = AuditEvent.objects.get(action=AuditAction.RELEASED)
    assert (event.actor, event.detail["via"]) == (None, "command line")


def test_send_now_with_an_unknown_id_is_an_error_naming_it() -> None:
    with pytest.raises(CommandError, match="no announcement with id 424242"):
        call_command("send_now", "424242")


def test_the_import_command_reports_a_bad_country_on_its_line(tmp_path: Any) -> None:
    path = tmp_path / "staff.csv"
    path.write_bytes(
        csv_bytes("ann@example.com,Ann,Eng,Atlantis,UTC,XX", header=f"{HEADER},country")
    )
    err = io.StringIO()

    with pytest.raises(CommandError):
        call_command("import_employees", str(path), stderr=err)

    assert err.getvalue().strip() == (
        f"{path}:line 2: country: unknown country code 'XX' (ISO 3166-1 alpha-2)"
    )


# --- the admin -------------------------------------------------------------------------------

LOCATION_FORM = {
    "name": "Pune",
    "timezone": "Asia/Kolkata",
    "country": "IN",
    "subdivision": "MH",
    "working_week": "Mon-Fri 09:00-17:00",
}


def test_the_location_admin_saves_a_good_location(admin_client: Client) -> None:
    response = admin_client.post("/admin/bulletin/location/add/", LOCATION_FORM)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert Location.objects.get().subdivision == "MH"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"country": "XX", "subdivision": ""}, "country", "unknown country code &#x27;XX&#x27;"),
        ({"subdivision": "ZZ"}, "subdivision", "unknown subdivision code &#x27;ZZ&#x27;"),
        ({"working_week": "weekdays"}, "working_week", "is not like"),
    ],
    ids=["country", "subdivision", "working-week"],
)
def test_the_location_admin_shows_a_bad_code_beside_its_field_and_saves_nothing(
    admin_client: Client, changes: dict[str, str], field: str, words: str
) -> None:
    response = admin_client.post("/admin/bulletin/location/add/", {**LOCATION_FORM, **changes})

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert words in response.content.decode()
    assert not Location.objects.exists()


def test_the_location_list_counts_employees_and_searches_by_name(admin_client: Client) -> None:
    factories.employees(2, location="Leeds")
    factories.location("Pune")

    page = admin_client.get("/admin/bulletin/location/", {"q": "lee"})

    rows = page.context["cl"].result_list
    assert [(row.name, row.n_employees) for row in rows] == [("Leeds", 2)]


def test_the_employee_admin_saves_a_location_and_leave(admin_client: Client) -> None:
    [ann] = factories.employees(1, location="Leeds")
    factories.location("Pune", zone="Asia/Kolkata")
    form = {
        "email": ann.email,
        "name": ann.name,
        "department": "",
        "location": "Pune",
        "timezone": "Asia/Kolkata",
        "active": "on",
        "away_until": "2027-01-15",
        "slack_user_id": "",
        "opt_outs-TOTAL_FORMS": "0",
        "opt_outs-INITIAL_FORMS": "0",
    }

    response = admin_client.post(f"/admin/bulletin/employee/{ann.pk}/change/", form)

    assert response.status_code == 302, response.content.decode()[:3000]
    ann.refresh_from_db()
    assert (ann.location_id, ann.away_until) == ("Pune", date(2027, 1, 15))


def test_the_announcement_admin_sends_held_deliveries_now(admin_client: Client) -> None:
    item = held_announcement()

    page = admin_client.post(
        "/admin/bulletin/announcement/",
        {"action": "send_now_selected", "_selected_action": [item.pk]},
        follow=True,
    ).content.decode()

    assert "3 held deliveries released to be sent now" in page
    assert not Delivery.objects.filter(state=DeliveryState.HELD).exists()
    assert AuditEvent.objects.filter(action=AuditAction.RELEASED, announcement=item).exists()


def test_the_announcement_admin_offers_working_hours(admin_client: Client) -> None:
    page = admin_client.get("/admin/bulletin/announcement/add/").content.decode()

    assert 'name="working_hours"' in page
