"""Bulletin's SCIM server on its own terms: errors in SCIM's schema (and nothing written),
pagination, deactivation that keeps history, and one upsert path shared with the CSV import."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
import time_machine
from django.test import Client

from bulletin.dispatch.planning import tick
from bulletin.domain.models import ApiToken, AuditEvent, Delivery, Employee, Location
from bulletin.domain.roles import ADMINISTRATOR, ANNOUNCER
from bulletin.interfaces import roster
from tests import factories

pytestmark = pytest.mark.django_db

SCIM = "application/scim+json"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BULLETIN = "urn:bulletin:params:scim:schemas:extension:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def token(role: str = ADMINISTRATOR, scopes: tuple[str, ...] = ("scim",)) -> str:
    user = factories.person(f"caller-{role}-{'-'.join(scopes)}".replace(":", ""), role)
    return ApiToken.issue(user, "identity provider", list(scopes))[1]


class Scim:
    def __init__(self, raw: str | None) -> None:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"} if raw else {}
        self.client = Client(enforce_csrf_checks=True, **headers)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body) if body is not None else ""
        return self.client.generic(method, f"/scim/v2{path}", data, content_type=SCIM)

    def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = self.call(method, path, body)
        assert response.status_code == status, response.content
        return response.json() if response.content else None


@pytest.fixture
def scim() -> Scim:
    return Scim(token())


def user(name: str = "ada", **extra: Any) -> dict[str, Any]:
    return {
        "schemas": [CORE, ENTERPRISE, BULLETIN],
        "userName": name,
        "displayName": name.title(),
        "emails": [{"value": f"{name}@example.com", "type": "work"}],
        "active": True,
        ENTERPRISE: {"department": "Engineering"},
        BULLETIN: {"location": "Leeds", "timeZone": "Europe/London"},
        **extra,
    }


def assert_error(response: Any, status: int, scim_type: str | None, mentions: str = "") -> None:
    """An error in RFC 7644 §3.12's schema, its status a string, the attribute named."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == SCIM
    body = response.json()
    assert body["schemas"] == [ERROR] and body["status"] == str(status)
    assert body.get("scimType") == scim_type
    assert mentions in body["detail"], body["detail"]


def state() -> list[Any]:
    """Every employee's every field, and how many audit events: what a refusal must not
    change."""
    return [*Employee.objects.order_by("pk").values_list(), AuditEvent.objects.count()]


# --- errors -------------------------------------------------------------------------------


def test_a_filter_bulletin_cannot_read_is_a_400_invalid_filter(scim: Scim) -> None:
    for bad in ("userName eq", 'phoneNumbers eq "1"', 'userName gt "a" and'):
        assert_error(scim.call("GET", f"/Users?filter={quote(bad)}"), 400, "invalidFilter")
    assert_error(scim.call("GET", f"/Users?filter={quote('shoeSize eq 9')}"), 400, "invalidFilter")


def test_an_unknown_id_is_a_scim_404_and_so_are_groups_and_any_other_path(scim: Scim) -> None:
    assert_error(scim.call("GET", "/Users/999999"), 404, None, "999999")
    assert_error(scim.call("GET", "/Users/not-a-number"), 404, None)
    assert_error(scim.call("PATCH", "/Users/999999", {"Operations": []}), 404, None)
    assert_error(scim.call("GET", "/Groups"), 404, None, "department")
    assert_error(scim.call("GET", "/Nowhere"), 404, None)
    assert_error(scim.call("POST", "/Bulk", {}), 501, None, "bulk")


def test_a_second_user_with_the_same_user_name_in_any_case_is_a_409_uniqueness(
    scim: Scim,
) -> None:
    scim.ok("POST", "/Users", user("ada"), 201)
    before = state()
    again = user("bea", userName="ADA")
    assert_error(scim.call("POST", "/Users", again), 409, "uniqueness", "userName")
    taken = user("bea", emails=[{"value": "ada@example.com", "type": "work"}])
    assert_error(scim.call("POST", "/Users", taken), 409, "uniqueness", "emails")
    assert state() == before


def test_an_email_change_to_another_employees_address_is_a_409_and_renames_nobody(
    scim: Scim,
) -> None:
    ada = scim.ok("POST", "/Users", user("ada"), 201)
    scim.ok("POST", "/Users", user("bea"), 201)
    before = state()
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "replace", "path": "emails", "value": [{"value": "bea@example.com"}]}
        ],
    }
    assert_error(scim.call("PATCH", f"/Users/{ada['id']}", patch), 409, "uniqueness", "emails")
    assert state() == before


def test_a_bad_zone_is_a_400_invalid_value_naming_the_attribute_and_writes_nothing(
    scim: Scim,
) -> None:
    before = state()
    bad = user("ada", **{BULLETIN: {"timeZone": "Mars/Olympus"}})
    assert_error(scim.call("POST", "/Users", bad), 400, "invalidValue", f"{BULLETIN}:timeZone")
    assert state() == before and not Location.objects.filter(name="Leeds").exists()
    created = scim.ok("POST", "/Users", user("ada"), 201)
    before = state()
    replaced = user("ada", **{BULLETIN: {"location": "L" * 300, "timeZone": "UTC"}})
    response = scim.call("PUT", f"/Users/{created['id']}", replaced)
    assert_error(response, 400, "invalidValue", f"{BULLETIN}:location")
    long_name = user("ada", displayName="x" * 201)
    assert_error(scim.call("PUT", f"/Users/{created['id']}", long_name), 400, "invalidValue")
    assert state() == before


def test_a_body_that_is_not_a_json_object_is_a_400_invalid_syntax(scim: Scim) -> None:
    response = scim.client.generic("POST", "/scim/v2/Users", "{not json", content_type=SCIM)
    assert_error(response, 400, "invalidSyntax")
    assert_error(scim.call("POST", "/Users", ["a list"]), 400, "invalidSyntax")


def test_a_patch_of_a_read_only_attribute_or_an_unknown_path_is_refused(scim: Scim) -> None:
    ada = scim.ok("POST", "/Users", user("ada"), 201)
    read_only = {"Operations": [{"op": "replace", "path": "id", "value": "7"}]}
    assert_error(scim.call("PATCH", f"/Users/{ada['id']}", read_only), 400, "mutability")
    no_target = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": 'emails[value co "nobody"].type', "value": "x"}],
    }
    assert_error(scim.call("PATCH", f"/Users/{ada['id']}", no_target), 400, "noTarget")


def test_without_a_token_it_is_401_and_a_token_without_the_scope_or_rights_is_403() -> None:
    assert_error(Scim(None).call("GET", "/Users"), 401, None, "token")
    assert_error(Scim("blt_not-a-real-token").call("GET", "/Users"), 401, None)
    wrong_scope = Scim(token(scopes=("employees:write",)))
    assert_error(wrong_scope.call("GET", "/Users"), 403, None, "scim")
    announcer = Scim(token(ANNOUNCER))
    assert_error(announcer.call("POST", "/Users", user("ada")), 403, None, "employee")
    assert not Employee.objects.exists()


def test_a_change_to_a_version_the_caller_has_not_seen_is_a_412(scim: Scim) -> None:
    created = scim.call("POST", "/Users", user("ada"))
    stale = created["ETag"]
    scim.ok(
        "PATCH",
        f"/Users/{created.json()['id']}",
        {"Operations": [{"op": "replace", "path": "displayName", "value": "Ada L"}]},
    )
    response = scim.client.generic(
        "PATCH",
        f"/scim/v2/Users/{created.json()['id']}",
        json.dumps({"Operations": [{"op": "replace", "path": "displayName", "value": "X"}]}),
        content_type=SCIM,
        HTTP_IF_MATCH=stale,
    )
    assert_error(response, 412, None)
    assert Employee.objects.get().name == "Ada L"


# --- lists and pagination -----------------------------------------------------------------


def test_pages_are_one_based_and_a_page_past_the_end_is_empty_with_the_true_total(
    scim: Scim,
) -> None:
    for n in range(5):
        scim.ok("POST", "/Users", user(f"p{n}"), 201)
    first = scim.ok("GET", "/Users?startIndex=1&count=2")
    assert (first["totalResults"], first["startIndex"], first["itemsPerPage"]) == (5, 1, 2)
    last = scim.ok("GET", "/Users?startIndex=5&count=2")
    assert (last["itemsPerPage"], last["Resources"][0]["userName"]) == (1, "p4")
    past = scim.ok("GET", "/Users?startIndex=9&count=2")
    assert (past["totalResults"], past["itemsPerPage"], past.get("Resources")) == (5, 0, None)
    counted = scim.ok("GET", "/Users?count=0")
    assert (counted["totalResults"], counted["itemsPerPage"]) == (5, 0)
    seen = [
        r["userName"]
        for i in (1, 3, 5)
        for r in scim.ok("GET", f"/Users?startIndex={i}&count=2")["Resources"]
    ]
    assert seen == [f"p{n}" for n in range(5)]


def test_filters_combine_with_and_or_and_find_people_by_work_email(scim: Scim) -> None:
    scim.ok("POST", "/Users", user("ada"), 201)
    bea = scim.ok("POST", "/Users", user("bea", active=False), 201)
    cases = {
        'userName eq "ADA"': {"ada"},
        'emails[type eq "work"].value eq "bea@example.com"': {"bea"},
        "active eq true": {"ada"},
        'userName eq "ada" or userName eq "bea"': {"ada", "bea"},
        'userName sw "a" and active eq false': set(),
        f'{ENTERPRISE}:department eq "Engineering" and not (active eq true)': {"bea"},
        f'id eq "{bea["id"]}"': {"bea"},
    }
    for expression, expected in cases.items():
        page = scim.ok("GET", f"/Users?filter={quote(expression)}")
        assert {r["userName"] for r in page.get("Resources", [])} == expected, expression


# --- deactivation ---------------------------------------------------------------------------


def test_deactivation_keeps_the_employee_and_their_deliveries_and_stops_their_fan_out(
    scim: Scim,
) -> None:
    ada = Employee.objects.get(pk=int(scim.ok("POST", "/Users", user("ada"), 201)["id"]))
    bea = Employee.objects.get(pk=int(scim.ok("POST", "/Users", user("bea"), 201)["id"]))
    item = factories.fired()
    assert Delivery.objects.filter(employee=ada).count() == 1
    deactivate = {"Operations": [{"op": "replace", "value": {"active": False}}]}
    scim.ok("PATCH", f"/Users/{ada.pk}", deactivate)
    assert scim.call("DELETE", f"/Users/{bea.pk}").status_code == 204
    with time_machine.travel(item.created_at + timedelta(seconds=120), tick=False):
        tick()
    for person in (ada, bea):
        person.refresh_from_db()
        assert person.active is False
        assert Delivery.objects.filter(employee=person).count() == 1  # the first only
    actions = AuditEvent.objects.filter(action="deprovisioned").values_list("detail", flat=True)
    assert {(d["employee_id"], d["change"]) for d in actions} == {
        (ada.pk, "deactivated"),
        (bea.pk, "deleted"),
    }


def test_a_deleted_user_is_gone_for_scim_until_created_again_as_the_same_employee(
    scim: Scim,
) -> None:
    ada = scim.ok("POST", "/Users", user("ada"), 201)
    assert scim.call("DELETE", f"/Users/{ada['id']}").status_code == 204
    assert_error(scim.call("GET", f"/Users/{ada['id']}"), 404, None)
    assert scim.ok("GET", "/Users?filter=" + quote('userName eq "ada"'))["totalResults"] == 0
    assert Employee.objects.get(pk=int(ada["id"])).active is False  # kept, inactive
    again = scim.ok("POST", "/Users", user("ada"), 201)
    assert again["id"] == ada["id"] and again["active"] is True


# --- one upsert path with the CSV import ----------------------------------------------------

CSV = (
    b"email,name,department,location,timezone,active\n"
    b"ada@example.com,Ada,Engineering,Leeds,Europe/London,true\n"
)
ROSTER_FIELDS = ("email", "name", "department", "location_id", "timezone", "active")


def roster_row() -> tuple[Any, ...]:
    return tuple(Employee.objects.values_list(*ROSTER_FIELDS).get())


def test_a_csv_import_then_a_scim_create_of_the_same_person_leave_one_and_the_same_row(
    scim: Scim,
) -> None:
    roster.import_employees(CSV)
    imported = roster_row()
    # The provider finds the imported person by email standing in for a userName...
    found = scim.ok("GET", "/Users?filter=" + quote('userName eq "ada@example.com"'))
    assert found["totalResults"] == 1
    # ...and a create of the same person claims that employee rather than making a second.
    created = scim.ok("POST", "/Users", user("ada", displayName="Ada"), 201)
    assert Employee.objects.count() == 1 and roster_row() == imported
    assert created["userName"] == "ada" and created["id"] == found["Resources"][0]["id"]
    roster.import_employees(CSV)
    assert roster_row() == imported and Employee.objects.get().scim_user_name == "ada"


def test_a_scim_create_then_the_same_csv_import_leave_the_same_row_and_change_nothing(
    scim: Scim,
) -> None:
    scim.ok("POST", "/Users", user("ada", displayName="Ada"), 201)
    provisioned = roster_row()
    report = roster.import_employees(CSV)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 1)
    assert roster_row() == provisioned


def test_scim_and_the_csv_import_refuse_the_same_bad_value_with_the_same_words(
    scim: Scim,
) -> None:
    with pytest.raises(roster.ImportRejected) as rejected:
        roster.import_employees(CSV.replace(b"Europe/London", b"Mars/Olympus"))
    response = scim.call("POST", "/Users", user("ada", **{BULLETIN: {"timeZone": "Mars/Olympus"}}))
    words = rejected.value.errors[0].message.removeprefix("timezone: ")
    assert words in response.json()["detail"]


def test_a_body_larger_than_the_server_takes_is_a_413_in_scim_s_schema(
    scim: Scim, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200
    response = scim.call("POST", "/Users", user("ada", displayName="A" * 300))
    assert_error(response, 413, None, "larger")
    assert not Employee.objects.exists()


def test_a_new_employee_without_a_zone_takes_their_locations_as_a_csv_row_would(
    scim: Scim,
) -> None:
    no_zone = user("ada", **{BULLETIN: {"location": "Pune"}})
    response = scim.call("POST", "/Users", no_zone)
    assert_error(response, 400, "invalidValue", "location 'Pune' has no zone yet")
    factories.location("Pune", zone="Asia/Kolkata")
    created = scim.ok("POST", "/Users", no_zone, 201)
    assert created[BULLETIN] == {"location": "Pune", "timeZone": "Asia/Kolkata"}
