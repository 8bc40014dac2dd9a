"""The REST API at /api/v1/: who may do what (role by action), tokens and scopes, errors that
name their fields, pagination, the HR system's bulk upsert, retries and schedule previews."""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from bulletin import conf
from bulletin.dispatch import lifecycle
from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    ApiToken,
    AuditEvent,
    Delivery,
    DeliveryState,
    Employee,
    ScheduleKind,
)
from bulletin.domain.roles import ADMINISTRATOR, ANNOUNCER, APPROVER, EMPLOYEE
from bulletin.interfaces.api.auth import SCOPES
from bulletin.scheduling.rules import OneOffRule, resolve_one_off
from tests import factories

pytestmark = pytest.mark.django_db


@dataclass
class Api:
    """A JSON client that sends one bearer token."""

    client: Client
    token: str

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        **params: Any,
    ) -> Any:
        kwargs: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {self.token}"}
        if headers:
            kwargs["headers"] = headers
        if body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        elif params:
            kwargs["data"] = params
        return getattr(self.client, method)(f"/api/v1{path}", **kwargs)

    def get(self, path: str, **params: Any) -> Any:
        return self.call("get", path, **params)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("post", path, {} if body is None else body)

    def patch(self, path: str, body: Any) -> Any:
        return self.call("patch", path, body)

    def delete(self, path: str) -> Any:
        return self.call("delete", path)


def user_with_role(django_user_model: Any, name: str, role: str) -> Any:
    user = django_user_model.objects.create_user(name, f"{name}@example.com")  # no password:
    # the API knows only tokens, and hashing one would be most of each test's time
    user.groups.add(Group.objects.get(name=role))
    return user


def api_for(user: Any, scopes: tuple[str, ...] = SCOPES) -> Api:
    _, raw = ApiToken.issue(user, "tests", list(scopes))
    return Api(Client(), raw)


@pytest.fixture
def as_role(django_user_model: Any) -> Callable[[str], Api]:
    def make(role: str, scopes: tuple[str, ...] = SCOPES) -> Api:
        return api_for(user_with_role(django_user_model, role.lower(), role), scopes)

    return make


@pytest.fixture
def announcer(as_role: Callable[[str], Api]) -> Api:
    return as_role(ANNOUNCER)


@pytest.fixture
def approver(as_role: Callable[[str], Api]) -> Api:
    return as_role(APPROVER)


@pytest.fixture
def author(django_user_model: Any) -> Any:
    return user_with_role(django_user_model, "author", ANNOUNCER)


@pytest.fixture
def approval_required(settings: Any) -> None:
    settings.BULLETIN = replace(conf.load({}), require_approval=True)


new_announcement = factories.api_announcement


def draft_by(user: Any, **fields: Any) -> Announcement:
    item = Announcement(
        title="Office move",
        body="We move on Friday.",
        channels=["email"],
        schedule_kind=ScheduleKind.CRON,
        cron="0 9 * * *",
        timezone="Europe/London",
        **fields,
    )
    return lifecycle.create(item, user)


def spring_gap_in_new_york() -> str:
    """02:30 on the second Sunday of March, two years on: a local time that does not exist."""
    year = timezone.now().year + 2
    first = date(year, 3, 1)
    second_sunday = first + timedelta(days=(6 - first.weekday()) % 7 + 7)
    return f"{second_sunday.isoformat()}T02:30"


def fields_of(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.content
    return {item["field"]: item["message"] for item in response.json()["detail"]}


# --- the authorisation matrix -------------------------------------------------------------------

ROLES = (EMPLOYEE, ANNOUNCER, APPROVER, ADMINISTRATOR)
READERS = {ANNOUNCER, APPROVER, ADMINISTRATOR}
COMPOSERS = {ANNOUNCER, ADMINISTRATOR}
APPROVERS = {APPROVER, ADMINISTRATOR}


def employees_bulk(api: Api, author: Any) -> Any:
    item = {"email": "new@example.com", "name": "New Person", "department": "Ops"}
    return api.post("/employees/bulk", [{**item, "location": "Leeds", "timezone": "UTC"}])


def pending_approval(author: Any) -> Announcement:
    item = draft_by(author)
    Announcement.objects.filter(pk=item.pk).update(status=AnnouncementStatus.PENDING_APPROVAL)
    return item


def scheduled() -> Announcement:
    return factories.announcement(now=timezone.now(), cron="0 9 * * *")


ACTIONS: dict[str, tuple[set[str], Callable[[Api, Any], Any]]] = {
    "list announcements": (READERS, lambda api, author: api.get("/announcements")),
    "create an announcement": (
        COMPOSERS,
        lambda api, author: api.post("/announcements", new_announcement()),
    ),
    "edit an announcement": (
        COMPOSERS,
        lambda api, author: api.patch(f"/announcements/{draft_by(author).pk}", {"title": "New"}),
    ),
    "schedule an announcement": (
        COMPOSERS,
        lambda api, author: api.post(f"/announcements/{draft_by(author).pk}/schedule"),
    ),
    "approve an announcement": (
        APPROVERS,
        lambda api, author: api.post(f"/announcements/{pending_approval(author).pk}/approve"),
    ),
    "pause an announcement": (
        COMPOSERS,
        lambda api, author: api.post(f"/announcements/{scheduled().pk}/pause"),
    ),
    "cancel an announcement": (
        COMPOSERS,
        lambda api, author: api.post(f"/announcements/{scheduled().pk}/cancel"),
    ),
    "retry deliveries": (
        COMPOSERS,
        lambda api, author: api.post(f"/announcements/{scheduled().pk}/retry", {}),
    ),
    "bulk upsert employees": ({ADMINISTRATOR}, employees_bulk),
    "list deliveries": (READERS, lambda api, author: api.get("/deliveries")),
}


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_do_exactly_what_its_permissions_allow(
    role: str, action: str, as_role: Callable[[str], Api], author: Any
) -> None:
    allowed, perform = ACTIONS[action]
    response = perform(as_role(role), author)
    if role in allowed:
        assert 200 <= response.status_code < 300, response.content
    else:
        assert response.status_code == 403, response.content
        assert response.json()["detail"].startswith("your role does not allow this")


# --- tokens and scopes ------------------------------------------------------------------------


def test_a_request_without_a_token_is_refused_with_401(client: Client) -> None:
    response = client.get("/api/v1/announcements")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "token" in response.json()["detail"]


@pytest.mark.parametrize(
    "header", ["Bearer blt_not-a-real-token", "Bearer nonsense", "Token blt_x", "Bearer "]
)
def test_an_unknown_or_malformed_token_is_refused_with_401(client: Client, header: str) -> None:
    response = client.get("/api/v1/announcements", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401


def test_a_revoked_token_is_refused_with_401(announcer: Api) -> None:
    assert announcer.get("/announcements").status_code == 200
    ApiToken.objects.update(revoked_at=timezone.now())
    assert announcer.get("/announcements").status_code == 401


def test_the_token_of_a_deactivated_user_is_refused_with_401(announcer: Api) -> None:
    ApiToken.objects.get().user.__class__.objects.update(is_active=False)
    assert announcer.get("/announcements").status_code == 401


def test_a_token_without_the_endpoints_scope_is_refused_with_403_naming_it(
    as_role: Callable[..., Api],
) -> None:
    reader = as_role(ADMINISTRATOR, scopes=("announcements:read",))
    assert reader.get("/announcements").status_code == 200
    response = reader.post("/announcements", new_announcement())
    assert response.status_code == 403
    assert response.json() == {"detail": "this token lacks the scope announcements:write"}
    assert Announcement.objects.count() == 0


def test_the_scope_is_checked_before_the_body_so_a_bad_body_still_gets_403(
    as_role: Callable[..., Api],
) -> None:
    reader = as_role(ADMINISTRATOR, scopes=("announcements:read",))
    response = reader.post("/announcements", {"nonsense": True})
    assert response.status_code == 403


def test_a_role_without_the_permission_gets_403_before_its_body_is_read(
    as_role: Callable[..., Api],
) -> None:
    response = as_role(EMPLOYEE).post("/announcements", {"nonsense": True})
    assert response.status_code == 403
    assert response.json()["detail"] == "your role does not allow this (add_announcement)"


def test_the_token_acts_as_its_user_who_is_recorded_as_the_author(announcer: Api) -> None:
    created = announcer.post("/announcements", new_announcement()).json()
    assert created["created_by"] == "announcer"
    assert Announcement.objects.get().created_by.username == "announcer"  # type: ignore[union-attr]


# --- approval ---------------------------------------------------------------------------------


def test_nobody_may_approve_an_announcement_they_wrote(as_role: Callable[..., Api]) -> None:
    admin = as_role(ADMINISTRATOR)
    created = admin.post("/announcements", new_announcement()).json()
    Announcement.objects.filter(pk=created["id"]).update(status=AnnouncementStatus.PENDING_APPROVAL)
    response = admin.post(f"/announcements/{created['id']}/approve")
    assert response.status_code == 403
    assert "you cannot approve an announcement you wrote" in response.json()["detail"]


@pytest.mark.usefixtures("approval_required")
def test_with_approval_required_scheduling_waits_for_a_second_person(
    announcer: Api, approver: Api
) -> None:
    created = announcer.post("/announcements", new_announcement()).json()
    path = f"/announcements/{created['id']}"
    waiting = announcer.post(f"{path}/schedule").json()
    assert waiting["status"] == "pending_approval" and waiting["next_fire_at"] is None

    approved = approver.post(f"{path}/approve")
    assert approved.status_code == 200, approved.content
    body = approved.json()
    assert body["status"] == "scheduled" and body["next_fire_at"] is not None
    assert body["approvals"][0]["approved_by"] == "approver"
    assert body["approvals"][0]["version"] == body["version"] == 1

    again = approver.post(f"{path}/approve")
    assert again.status_code == 409
    assert again.json() == {"detail": "only an announcement waiting for approval can be approved"}

    edited = announcer.patch(path, {"body": "New words need a new approval."}).json()
    assert edited["status"] == "pending_approval" and edited["version"] == 2


# --- errors name their fields -----------------------------------------------------------------


def test_a_bad_cron_expression_is_refused_on_the_cron_field(announcer: Api) -> None:
    schedule = {"kind": "cron", "cron": "61 * * * *", "timezone": "Europe/London"}
    fields = fields_of(announcer.post("/announcements", new_announcement(schedule=schedule)))
    assert fields["cron"].startswith("invalid cron expression '61 * * * *'")
    assert Announcement.objects.count() == 0


def test_every_bad_field_is_reported_at_once(announcer: Api) -> None:
    schedule = {"kind": "cron", "cron": "* *", "timezone": "Mars/Olympus"}
    body = new_announcement(title="two\nlines", channels=["fax"], schedule=schedule)
    fields = fields_of(announcer.post("/announcements", body))
    assert set(fields) == {"title", "cron", "timezone", "channels"}
    assert "unknown time zone 'Mars/Olympus'" in fields["timezone"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (new_announcement(colour="red"), "colour"),
        (
            new_announcement(schedule={"kind": "cron", "cron": "0 9 * * *", "tz": "UTC"}),
            "schedule.tz",
        ),
        (new_announcement(audience={"kind": "everyone"}), "audience_kind"),
        ({"body": "no title", "schedule": {"kind": "once"}}, "title"),
        (new_announcement(misfire_grace_minutes=-5), "misfire_grace_minutes"),
    ],
)
def test_a_body_the_schema_refuses_is_a_422_naming_the_member(
    announcer: Api, body: dict[str, Any], field: str
) -> None:
    fields = fields_of(announcer.post("/announcements", body))
    assert field in fields, fields


def test_an_unknown_member_is_called_an_unknown_field(announcer: Api) -> None:
    fields = fields_of(announcer.post("/announcements", new_announcement(colour="red")))
    assert fields == {"colour": "unknown field"}


def test_a_one_off_time_in_the_spring_gap_names_at_local_and_both_choices(announcer: Api) -> None:
    gap = spring_gap_in_new_york()
    schedule = {"kind": "once", "at_local": gap, "timezone": "America/New_York"}
    fields = fields_of(announcer.post("/announcements", new_announcement(schedule=schedule)))
    message = fields["at_local"]
    assert "does not exist" in message and "EST (-05:00)" in message and "EDT (-04:00)" in message
    assert Announcement.objects.count() == 0


def autumn_repeat_in_new_york() -> str:
    """01:30 on the first Sunday of November, two years on: a local time that happens twice."""
    year = timezone.now().year + 2
    first = date(year, 11, 1)
    return f"{(first + timedelta(days=(6 - first.weekday()) % 7)).isoformat()}T01:30"


def test_a_one_off_time_in_the_autumn_repeat_is_created_at_the_copy_at_fold_names(
    announcer: Api,
) -> None:
    schedule = {"kind": "once", "at_local": autumn_repeat_in_new_york()}
    schedule["timezone"] = "America/New_York"
    fields = fields_of(announcer.post("/announcements", new_announcement(schedule=schedule)))
    assert "occurs twice" in fields["at_local"] and Announcement.objects.count() == 0
    bad = announcer.post("/announcements", new_announcement(schedule={**schedule, "at_fold": 2}))
    assert list(fields_of(bad)) == ["at_fold"]
    for fold, utc_hour in ((0, 5), (1, 6)):  # 01:30 EDT (-04:00), then 01:30 EST (-05:00)
        made = announcer.post(
            "/announcements", new_announcement(schedule={**schedule, "at_fold": fold})
        )
        assert made.status_code == 201, made.content
        assert made.json()["schedule"]["at_fold"] == fold
        item = Announcement.objects.get(pk=made.json()["id"])
        rule = OneOffRule(datetime.fromisoformat(item.at_local), fold=item.at_fold)
        fires = resolve_one_off(rule, zoneinfo.ZoneInfo("America/New_York"))
        assert (fires.astimezone(UTC).hour, fires.minute) == (utc_hour, 30)


def test_an_unknown_place_is_refused_on_the_places_field(announcer: Api) -> None:
    fields = fields_of(announcer.post("/announcements", new_announcement(places=["slack:#nope"])))
    assert fields["places"].startswith("no place slack:#nope")


def test_a_list_audience_names_people_who_exist(announcer: Api) -> None:
    audience = {"kind": "list", "employee_ids": [999999]}
    fields = fields_of(announcer.post("/announcements", new_announcement(audience=audience)))
    assert fields == {"recipients": "no employee with id 999999"}
    (ada,) = factories.employees(1)
    audience["employee_ids"] = [ada.pk]
    created = announcer.post("/announcements", new_announcement(audience=audience))
    assert created.status_code == 201
    assert created.json()["audience"] == {"kind": "list", "values": [], "employee_ids": [ada.pk]}


def test_a_department_audience_round_trips_its_values(announcer: Api) -> None:
    for department in ("Sales", "Support", "Facilities"):
        factories.employees(1, prefix=department, department=department, location="London")
    audience = {"kind": "department", "values": ["Sales", " Support ", "Sales"]}
    created = announcer.post("/announcements", new_announcement(audience=audience))
    assert created.status_code == 201, created.content
    expected = {"kind": "department", "values": ["Sales", "Support"], "employee_ids": []}
    assert created.json()["audience"] == expected
    path = f"/announcements/{created.json()['id']}"
    assert announcer.get(path).json()["audience"] == expected

    body = announcer.patch(path, {"audience": {"values": ["Support", "Facilities"]}}).json()
    assert body["audience"]["values"] == ["Support", "Facilities"]
    body = announcer.patch(path, {"audience": {"kind": "location", "values": ["London"]}}).json()
    assert body["audience"] == {"kind": "location", "values": ["London"], "employee_ids": []}
    body = announcer.patch(path, {"audience": {"kind": "all"}}).json()
    assert body["audience"] == {"kind": "all", "values": [], "employee_ids": []}
    item = Announcement.objects.get()
    assert (item.audience_kind, item.audience_values) == ("all", [])


def test_a_department_or_location_nobody_is_in_is_refused_naming_the_closest(
    announcer: Api,
) -> None:
    factories.employees(2, department="Sales", location="London")
    audience = {"kind": "department", "values": ["Salse", "Sales"]}
    refused = announcer.post("/announcements", new_announcement(audience=audience))
    assert refused.status_code == 422
    assert refused.json()["detail"] == [
        {
            "field": "audience_values",
            "message": "department 'Salse' matches nobody; did you mean 'Sales'?",
        }
    ]
    assert not Announcement.objects.exists()
    audience = {"kind": "department", "values": ["Future team"], "allow_empty": True}
    created = announcer.post("/announcements", new_announcement(audience=audience))
    assert created.status_code == 201, created.content
    path = f"/announcements/{created.json()['id']}"
    moved = announcer.patch(path, {"audience": {"kind": "location", "values": ["Londn"]}})
    assert moved.status_code == 422 and "did you mean 'London'?" in moved.content.decode()
    kept = announcer.patch(
        path, {"audience": {"kind": "location", "values": ["Londn"], "allow_empty": True}}
    )
    assert kept.status_code == 200


@pytest.mark.parametrize(
    ("audience", "message"),
    [
        pytest.param(
            {"kind": "department"},
            "name at least one department this announcement is for",
            id="no-values",
        ),
        pytest.param(
            {"kind": "location", "values": [" ", ""]},
            "name at least one location this announcement is for",
            id="blank-values",
        ),
        pytest.param(
            {"kind": "all", "values": ["Sales"]},
            "values apply only to a 'department' or 'location' audience",
            id="values-for-everyone",
        ),
        pytest.param(
            {"kind": "department", "values": ["Sales", 7]},
            "item 1: Input should be a valid string",
            id="not-text",
        ),
    ],
)
def test_bad_audience_values_are_refused_naming_audience_values(
    announcer: Api, audience: dict[str, Any], message: str
) -> None:
    fields = fields_of(announcer.post("/announcements", new_announcement(audience=audience)))
    assert fields == {"audience_values": message}
    assert Announcement.objects.count() == 0


def test_switching_to_a_department_audience_needs_its_values(announcer: Api, author: Any) -> None:
    path = f"/announcements/{draft_by(author).pk}"
    fields = fields_of(announcer.patch(path, {"audience": {"kind": "department"}}))
    assert fields == {"audience_values": "name at least one department this announcement is for"}
    assert Announcement.objects.get().audience_kind == "all"


def test_a_missing_announcement_is_404(announcer: Api) -> None:
    response = announcer.get("/announcements/999999")
    assert response.status_code == 404
    assert response.json() == {"detail": "no announcement with id 999999"}


def test_an_action_the_state_forbids_is_409(announcer: Api, author: Any) -> None:
    response = announcer.post(f"/announcements/{draft_by(author).pk}/pause")
    assert response.status_code == 409
    assert response.json() == {"detail": "only a scheduled announcement can be paused"}


# --- announcements ----------------------------------------------------------------------------


def test_creating_saves_a_draft_with_its_first_version(announcer: Api) -> None:
    response = announcer.post("/announcements", new_announcement(misfire_grace_minutes=15))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft" and body["version"] == 1 and body["next_fire_at"] is None
    assert body["schedule"] == {
        "kind": "cron",
        "cron": "0 9 * * 1-5",
        "at_local": "",
        "at_fold": None,
        "timezone": "Europe/London",
        "per_recipient_zone": False,
    }
    assert body["misfire_grace_minutes"] == 15
    assert body["deliveries"] == dict.fromkeys(DeliveryState.values, 0)


def test_scheduling_a_draft_sets_its_next_fire_time(announcer: Api) -> None:
    created = announcer.post("/announcements", new_announcement()).json()
    body = announcer.post(f"/announcements/{created['id']}/schedule").json()
    assert body["status"] == "scheduled" and body["next_fire_at"]


def test_editing_changes_only_the_members_given_and_makes_a_new_version(
    announcer: Api, author: Any
) -> None:
    item = draft_by(author)
    response = announcer.patch(
        f"/announcements/{item.pk}",
        {"title": "Office move, again", "schedule": {"cron": "0 10 * * *"}},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["title"] == "Office move, again" and body["version"] == 2
    assert body["schedule"]["cron"] == "0 10 * * *"
    assert body["schedule"]["timezone"] == "Europe/London"
    assert body["body"] == "We move on Friday."


def test_editing_refuses_null_rather_than_guessing(announcer: Api, author: Any) -> None:
    fields = fields_of(announcer.patch(f"/announcements/{draft_by(author).pk}", {"title": None}))
    assert "must not be null" in fields["title"]


def test_a_draft_can_be_deleted_but_anything_scheduled_must_be_cancelled(
    as_role: Callable[..., Api], author: Any
) -> None:
    admin = as_role(ADMINISTRATOR)
    item = draft_by(author)
    assert admin.delete(f"/announcements/{item.pk}").status_code == 204
    assert not Announcement.objects.filter(pk=item.pk).exists()
    live = scheduled()
    response = admin.delete(f"/announcements/{live.pk}")
    assert response.status_code == 409
    assert "cancel it instead" in response.json()["detail"]
    assert AuditEvent.objects.filter(action="deleted", detail__announcement_id=item.pk).exists()
    assert admin.post(f"/announcements/{live.pk}/cancel").json()["status"] == "cancelled"


def test_pause_and_resume_move_the_status_and_next_fire_time(announcer: Api) -> None:
    item = scheduled()
    paused = announcer.post(f"/announcements/{item.pk}/pause").json()
    assert paused["status"] == "paused" and paused["next_fire_at"] is None
    resumed = announcer.post(f"/announcements/{item.pk}/resume").json()
    assert resumed["status"] == "scheduled" and resumed["next_fire_at"]


def test_listing_filters_by_status(announcer: Api, author: Any) -> None:
    draft_by(author)
    live = scheduled()
    page = announcer.get("/announcements", status="scheduled").json()
    assert [item["id"] for item in page["items"]] == [live.pk] and page["count"] == 1
    assert announcer.get("/announcements", status="sleeping").status_code == 422


def test_the_detail_and_occurrences_count_deliveries_by_state(announcer: Api) -> None:
    factories.employees(3)
    item = factories.fired()
    first = Delivery.objects.order_by("id").first()
    factories.put(Delivery.objects.filter(pk=first.pk), state=DeliveryState.SENT)  # type: ignore[union-attr]
    detail = announcer.get(f"/announcements/{item.pk}").json()
    assert detail["deliveries"]["pending"] == 2 and detail["deliveries"]["sent"] == 1
    occurrences = announcer.get(f"/announcements/{item.pk}/occurrences").json()
    assert occurrences["count"] == 1
    (occurrence,) = occurrences["items"]
    assert occurrence["state"] == "fanned_out" and occurrence["version"] == 1
    assert occurrence["deliveries"] == {
        **dict.fromkeys(DeliveryState.values, 0),
        "pending": 2,
        "sent": 1,
    }


# --- pagination -------------------------------------------------------------------------------


def test_lists_are_paginated_with_limit_and_offset_up_to_500(
    as_role: Callable[..., Api],
) -> None:
    admin = as_role(ADMINISTRATOR)
    factories.employees(7)
    page = admin.get("/employees", limit=3, offset=3).json()
    assert page["count"] == 7
    assert [row["email"] for row in page["items"]] == [
        "person3@example.com",
        "person4@example.com",
        "person5@example.com",
    ]
    assert len(admin.get("/employees", limit=500).json()["items"]) == 7
    assert "limit" in fields_of(admin.get("/employees", limit=501))


def test_employees_are_filtered_by_department_location_activity_and_email(
    as_role: Callable[..., Api],
) -> None:
    admin = as_role(ADMINISTRATOR)
    factories.employees(2, prefix="ops", department="Ops", location="Leeds")
    factories.employees(1, prefix="it", department="IT", location="York", active=False)
    assert admin.get("/employees", department="Ops").json()["count"] == 2
    assert admin.get("/employees", location="York").json()["count"] == 1
    assert admin.get("/employees", active="false").json()["count"] == 1
    found = admin.get("/employees", email="OPS1@example.com").json()["items"]
    assert [row["email"] for row in found] == ["ops1@example.com"]


# --- employees --------------------------------------------------------------------------------


def person(email: str, **fields: Any) -> dict[str, Any]:
    row = {"email": email, "name": "Ada Lovelace", "department": "R&D", "location": "London"}
    return {**row, "timezone": "Europe/London", **fields}


def test_bulk_upsert_creates_updates_and_counts_unchanged(as_role: Callable[..., Api]) -> None:
    admin = as_role(ADMINISTRATOR)
    first = [person("ada@example.com"), person("bob@example.com", slack_user_id="U123")]
    assert admin.post("/employees/bulk", first).json() == {
        "created": 2,
        "updated": 0,
        "unchanged": 0,
    }
    second = [person("ADA@example.com", department="Ops"), person("bob@example.com")]
    assert admin.post("/employees/bulk", second).json() == {
        "created": 0,
        "updated": 1,
        "unchanged": 1,
    }
    assert Employee.objects.get(email="ada@example.com").department == "Ops"
    assert Employee.objects.get(email="bob@example.com").slack_user_id == "U123"


def test_bulk_upsert_is_all_or_nothing_and_reports_each_bad_item_by_index(
    as_role: Callable[..., Api],
) -> None:
    admin = as_role(ADMINISTRATOR)
    items = [
        person("ok@example.com"),
        person("not-an-email"),
        person("fine@example.com"),
        person("zone@example.com", timezone="Mars/Olympus"),
        person("OK@example.com"),
    ]
    response = admin.post("/employees/bulk", items)
    assert response.status_code == 422
    problems = [(p["index"], p["field"]) for p in response.json()["detail"]]
    assert problems == [(1, "email"), (3, "timezone"), (4, "email")]
    assert "duplicate of item 0" in response.json()["detail"][2]["message"]
    assert Employee.objects.count() == 0


def test_bulk_upsert_reports_schema_errors_by_index_and_member(
    as_role: Callable[..., Api],
) -> None:
    admin = as_role(ADMINISTRATOR)
    items = [person("a@example.com"), person("b@example.com", shoe_size=9), {"email": "c@x.org"}]
    detail = admin.post("/employees/bulk", items).json()["detail"]
    assert {"index": 1, "field": "shoe_size", "message": "unknown field"} in detail
    assert {(p["index"], p["field"]) for p in detail if p["index"] == 2} >= {(2, "name")}
    assert Employee.objects.count() == 0


def test_deactivating_an_employee_keeps_them_but_out_of_audiences(
    as_role: Callable[..., Api],
) -> None:
    admin = as_role(ADMINISTRATOR)
    (ada,) = factories.employees(1)
    response = admin.post(f"/employees/{ada.pk}/deactivate")
    assert response.status_code == 200 and response.json()["active"] is False
    assert Employee.objects.get(pk=ada.pk).active is False
    assert admin.post("/employees/999999/deactivate").status_code == 404


# --- deliveries and retries -------------------------------------------------------------------


def test_deliveries_are_listed_with_their_recipient_and_filtered(announcer: Api) -> None:
    factories.employees(2)
    item = factories.fired()
    factories.put(
        Delivery.objects.filter(employee__email="person1@example.com"),
        state=DeliveryState.FAILED,
        attempts=5,
        last_error="550 mailbox unavailable",
    )
    page = announcer.get("/deliveries", announcement_id=item.pk, state="failed").json()
    assert page["count"] == 1
    (row,) = page["items"]
    assert row["recipient"] == row["employee_email"] == "person1@example.com"
    assert row["announcement_id"] == item.pk and row["channel"] == "email"
    assert row["attempts"] == 5 and row["last_error"] == "550 mailbox unavailable"
    assert announcer.get("/deliveries", state="lost").status_code == 422


def test_retry_leaves_unknown_deliveries_alone_unless_include_unknown_is_true(
    announcer: Api,
) -> None:
    factories.employees(3)
    item = factories.fired()
    first, *others = Delivery.objects.order_by("id")
    factories.put(Delivery.objects.filter(pk=first.pk), state=DeliveryState.FAILED)
    factories.put(
        Delivery.objects.filter(pk__in=[d.pk for d in others]), state=DeliveryState.UNKNOWN
    )
    path = f"/announcements/{item.pk}/retry"

    assert announcer.post(path, {}).json() == {"retried": 1, "unknown_left": 2}
    assert "include_unknown" in fields_of(announcer.post(path, {"include_unknown": "yes"}))
    assert "include_unknown" in fields_of(announcer.post(path, {"include_unknown": 1}))
    assert Delivery.objects.filter(state=DeliveryState.UNKNOWN).count() == 2

    assert announcer.post(path, {"include_unknown": True}).json() == {
        "retried": 2,
        "unknown_left": 0,
    }
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.PENDING}


def test_retry_of_an_occurrence_of_another_announcement_is_404(announcer: Api) -> None:
    factories.employees(1)
    mine, other = scheduled(), factories.fired()
    occurrence = other.occurrences.get()
    response = announcer.post(f"/announcements/{mine.pk}/retry", {"occurrence_id": occurrence.pk})
    assert response.status_code == 404


# --- previews ---------------------------------------------------------------------------------


def test_the_preview_shows_local_and_utc_times_and_the_spring_forward_note(
    announcer: Api,
) -> None:
    response = announcer.get(
        "/preview",
        cron="30 2 * * *",
        timezone="America/New_York",
        count=3,
        **{"from": "2027-03-13"},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["zone"] == "America/New_York"
    local = [fire["local"] for fire in body["fire_times"]]
    assert local == [
        "2027-03-13T02:30:00-05:00",
        "2027-03-14T03:00:00-04:00",
        "2027-03-15T02:30:00-04:00",
    ]
    assert body["fire_times"][1]["utc"] == "2027-03-14T07:00:00Z"
    assert body["fire_times"][1]["note"] == (
        "02:30 does not exist on 14 Mar 2027 (clocks jump forward); fires at 03:00"
    )
    assert body["fire_times"][0]["note"] is None


def test_the_preview_names_a_bad_cron_and_a_bad_zone(announcer: Api) -> None:
    fields = fields_of(announcer.get("/preview", cron="0 25 * * *", timezone="Nowhere"))
    assert set(fields) == {"cron", "timezone"}


def test_a_saved_announcement_previews_its_next_fire_times(announcer: Api) -> None:
    item = scheduled()
    body = announcer.get(f"/announcements/{item.pk}/preview", count=4).json()
    assert body["zone"] == "Europe/London" and len(body["fire_times"]) == 4
    assert all("T09:00:00" in fire["local"] for fire in body["fire_times"])


def test_switching_an_audience_to_a_list_needs_its_people(announcer: Api, author: Any) -> None:
    item = draft_by(author)
    path = f"/announcements/{item.pk}"
    fields = fields_of(announcer.patch(path, {"audience": {"kind": "list"}}))
    assert fields == {"recipients": "a 'list' audience needs employee_ids"}
    ada, bob = factories.employees(2)
    audience = {"kind": "list", "employee_ids": [bob.pk, ada.pk]}
    body = announcer.patch(path, {"audience": audience}).json()
    assert body["audience"]["employee_ids"] == sorted([ada.pk, bob.pk])
    body = announcer.patch(path, {"audience": {"kind": "all"}}).json()
    assert body["audience"] == {"kind": "all", "values": [], "employee_ids": []}


def test_a_cancelled_announcement_cannot_be_scheduled_again(announcer: Api) -> None:
    item = scheduled()
    announcer.post(f"/announcements/{item.pk}/cancel")
    assert announcer.post(f"/announcements/{item.pk}/schedule").status_code == 409
