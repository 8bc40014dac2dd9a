"""The OpenAPI document at /api/v1/openapi.json: valid, complete, and declaring bearer auth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import Occurrence
from bulletin.domain.roles import ADMINISTRATOR
from tests import factories
from tests.test_api import Api, api_for, user_with_role

ENDPOINTS = {
    "/announcements": {"get", "post"},
    "/announcements/{id}": {"get", "patch", "delete"},
    "/announcements/{id}/schedule": {"post"},
    "/announcements/{id}/approve": {"post"},
    "/announcements/{id}/pause": {"post"},
    "/announcements/{id}/resume": {"post"},
    "/announcements/{id}/cancel": {"post"},
    "/announcements/{id}/retry": {"post"},
    "/announcements/{id}/send-now": {"post"},
    "/announcements/{id}/preview": {"get"},
    "/announcements/{id}/occurrences": {"get"},
    "/announcements/{id}/engagement": {"get"},
    "/occurrences/{id}/reminders": {"post"},
    "/preview": {"get"},
    "/employees": {"get"},
    "/employees/bulk": {"post"},
    "/employees/{id}/deactivate": {"post"},
    "/deliveries": {"get"},
    "/locations": {"get", "post"},
    "/locations/{id}": {"get", "patch"},
}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture
def admin(django_user_model: Any) -> Api:
    """A full-scope token of an administrator, who may do everything."""
    return api_for(user_with_role(django_user_model, "admin", ADMINISTRATOR))


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    response = Client().get("/api/v1/openapi.json")  # no token: the schema is public
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def test_the_schema_is_a_valid_openapi_3_document(schema: dict[str, Any]) -> None:
    assert schema["openapi"].startswith("3.")
    validate(schema)
    assert schema["info"]["title"] == "Bulletin API" and schema["info"]["version"] == "1"


@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_every_endpoint_is_documented_with_its_methods(schema: dict[str, Any], path: str) -> None:
    documented = set(schema["paths"][f"/api/v1{path}"]) & HTTP_METHODS
    assert documented == ENDPOINTS[path]


def test_there_are_no_undocumented_extras(schema: dict[str, Any]) -> None:
    assert set(schema["paths"]) == {f"/api/v1{path}" for path in ENDPOINTS}


def test_every_operation_requires_the_bearer_token_and_names_its_scope(
    schema: dict[str, Any],
) -> None:
    schemes = schema["components"]["securitySchemes"]
    assert schemes == {"BearerToken": {"type": "http", "scheme": "bearer"}}
    for path, methods in schema["paths"].items():
        for method in set(methods) & HTTP_METHODS:
            operation = methods[method]
            assert operation["security"] == [{"BearerToken": []}], (path, method)
            assert operation["x-scope"].split(":")[0] in {
                "announcements",
                "employees",
                "deliveries",
            }
            assert {"401", "403", "422"} <= set(operation["responses"]), (path, method)


def test_request_bodies_refuse_unknown_members(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    names = ("AnnouncementIn", "AnnouncementPatch", "ScheduleIn", "RetryIn", "EmployeeIn")
    for name in (*names, "LocationIn", "LocationPatch"):
        assert components[name]["additionalProperties"] is False, name


def test_the_new_members_for_working_hours_are_documented(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    assert "working_hours" in components["AnnouncementIn"]["properties"]
    assert "working_hours" in components["AnnouncementOut"]["properties"]
    assert "away_until" in components["EmployeeIn"]["properties"]
    assert {"state", "due_at", "hold_reason"} <= set(components["DeliveryOut"]["properties"])
    location = set(components["LocationIn"]["properties"])
    assert location == {"name", "timezone", "country", "subdivision", "working_week"}


def test_the_docs_page_is_served() -> None:
    # Only the page itself: its scripts come from a CDN this test must not need.
    assert Client().get("/api/v1/docs").status_code == 200


# --- the schema tells the truth about the server ------------------------------------------------


def operations_of(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path.removeprefix("/api/v1"), method, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
        if method in HTTP_METHODS
    ]


def conforms(schema: dict[str, Any], body_schema: dict[str, Any], value: Any) -> bool:
    """Whether ``value`` is valid for ``body_schema`` (its $refs resolved in ``schema``)."""
    document = {**body_schema, "components": schema["components"]}
    validator = OAS31Validator(document, format_checker=OAS31Validator.FORMAT_CHECKER)
    return validator.is_valid(value)


def body_schema_of(schema: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    content = schema["paths"][f"/api/v1{path}"][method]["requestBody"]["content"]
    return content["application/json"]["schema"]  # type: ignore[no-any-return]


def test_no_member_of_a_patch_is_documented_as_nullable(schema: dict[str, Any]) -> None:
    patches = {n: c for n, c in schema["components"]["schemas"].items() if n.endswith("Patch")}
    assert set(patches) == {"AnnouncementPatch", "AudiencePatch", "SchedulePatch", "LocationPatch"}
    for name, component in patches.items():
        for member, rules in component["properties"].items():
            assert {"type": "null"} not in rules.get("anyOf", []), (name, member)
            assert rules.get("type") != "null" and "default" not in rules, (name, member)
    assert not conforms(
        schema, body_schema_of(schema, "/announcements/{id}", "patch"), {"title": None}
    )


BODY_OPERATIONS = {
    ("/announcements", "post"),
    ("/announcements/{id}", "patch"),
    ("/announcements/{id}/retry", "post"),
    ("/employees/bulk", "post"),
    ("/locations", "post"),
    ("/locations/{id}", "patch"),
    ("/occurrences/{id}/reminders", "post"),
}
STATEFUL = {"schedule", "approve", "pause", "resume", "cancel"}


def documented_4xx(path: str, method: str) -> set[str]:
    """What each operation can answer besides success: every one 401, 403 and 422; 400 for a
    body that is not JSON and 413 for one too large; 404 for an id; 409 where the
    announcement's state may forbid it, or a location's employees keep its name."""
    codes = {"401", "403", "422"}
    if (path, method) in BODY_OPERATIONS:
        codes |= {"400", "413"}
    if "{id}" in path:
        codes.add("404")
    last = path.rsplit("/", 1)[-1]
    if path.startswith("/announcements/{id}") and (
        last in STATEFUL or method in {"patch", "delete"}
    ):
        codes.add("409")
    if (path, method) == ("/locations/{id}", "patch"):
        codes.add("409")
    return codes


def test_each_operation_documents_every_4xx_it_can_answer(schema: dict[str, Any]) -> None:
    for path, method, operation in operations_of(schema):
        documented = {code for code in operation["responses"] if code.startswith("4")}
        assert documented == documented_4xx(path, method), (path, method)


@pytest.mark.django_db
def test_a_body_that_is_not_json_is_a_documented_400_on_every_operation_that_reads_one(
    schema: dict[str, Any], admin: Api
) -> None:
    with_body = {(p, m): op for p, m, op in operations_of(schema) if "requestBody" in op}
    assert set(with_body) == BODY_OPERATIONS
    for (path, method), operation in with_body.items():
        assert "400" in operation["responses"], (path, method)
        target = path.replace("{id}", str(target_of(admin, path)))
        response = getattr(admin.client, method)(
            f"/api/v1{target}",
            data='{"title": ',
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {admin.token}",
        )
        assert response.status_code == 400, (path, response.content)
        assert "not valid JSON" in response.json()["detail"]


REFUSED = [
    ("/announcements", "post", factories.api_announcement(title="   "), "title"),
    ("/announcements", "post", factories.api_announcement(title="Two\nlines"), "title"),
    ("/announcements", "post", factories.api_announcement(body=""), "body"),
    ("/announcements", "post", factories.api_announcement(title="A\0"), "title"),
    (
        "/announcements",
        "post",
        factories.api_announcement(schedule={"kind": "cron", "timezone": "UTC"}),
        "cron",
    ),
    (
        "/announcements",
        "post",
        factories.api_announcement(schedule={"kind": "once", "timezone": "UTC"}),
        "at_local",
    ),
    (
        "/announcements",
        "post",
        factories.api_announcement(schedule={"kind": "cron", "cron": "0 9 * * *"}),
        "timezone",
    ),
    (
        "/employees/bulk",
        "post",
        [{"email": "nobody", "name": "N", "department": "", "location": "", "timezone": ""}],
        "email",
    ),
    (
        "/employees/bulk",
        "post",
        [{"email": "n@example.com", "name": " ", "department": "", "location": "", "timezone": ""}],
        "name",
    ),
    ("/locations", "post", {"name": "  ", "timezone": "UTC"}, "name"),
    (
        "/announcements",
        "post",
        factories.api_announcement(audience={"kind": "all", "values": ["Sales"]}),
        "audience_values",
    ),
    (
        "/announcements",
        "post",
        factories.api_announcement(audience={"kind": "department", "values": []}),
        "audience_values",
    ),
    (
        "/announcements",
        "post",
        factories.api_announcement(audience={"kind": "list"}),
        "recipients",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "method", "body", "field"), REFUSED)
def test_the_schema_refuses_what_the_server_refuses(
    schema: dict[str, Any], admin: Api, path: str, method: str, body: Any, field: str
) -> None:
    assert not conforms(schema, body_schema_of(schema, path, method), body)
    response = admin.call(method, path, body)
    assert response.status_code == 422, response.content
    assert field in {problem["field"] for problem in response.json()["detail"]}


def test_string_rules_are_stated_where_the_server_enforces_them(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    title = components["AnnouncementIn"]["properties"]["title"]
    assert title["minLength"] == 1 and title["maxLength"] == 200 and "pattern" in title
    assert components["AnnouncementIn"]["properties"]["body"]["minLength"] == 1
    assert components["EmployeeIn"]["properties"]["email"]["format"] == "email"
    kinds = [branch["properties"]["kind"]["const"] for branch in components["ScheduleIn"]["oneOf"]]
    assert kinds == ["cron", "once"]
    audiences = components["AudienceIn"]["oneOf"]
    assert [branch["properties"]["kind"] for branch in audiences] == [
        {"const": "all"},
        {"enum": ["department", "location"]},
        {"const": "list"},
    ]


def target_of(api: Api, path: str) -> int:
    """A fresh row for a path's {id}: a draft announcement, or a location."""
    if path.startswith("/occurrences/"):  # one sent, asking for acknowledgement
        factories.employees(2)
        factories.fired(requires_ack=True)
        Dispatcher().run_until_idle()
        return Occurrence.objects.get().pk
    if path.startswith("/locations/"):
        return api.post("/locations", {"name": "Leeds", "timezone": "Europe/London"}).json()["id"]  # type: ignore[no-any-return]
    return api.post("/announcements", factories.api_announcement()).json()["id"]  # type: ignore[no-any-return]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "method"), sorted(BODY_OPERATIONS))
def test_each_request_bodys_example_is_valid_and_accepted_by_the_server(
    schema: dict[str, Any], admin: Api, path: str, method: str
) -> None:
    content = schema["paths"][f"/api/v1{path}"][method]["requestBody"]["content"]
    example = content["application/json"]["example"]
    assert conforms(schema, body_schema_of(schema, path, method), example)
    operation = schema["paths"][f"/api/v1{path}"][method]
    headers = {  # the headers it documents (an Idempotency-Key), with their example
        param["name"]: param["schema"]["example"]
        for param in operation.get("parameters", [])
        if param["in"] == "header"
    }
    # The examples' departments exist (a name that matches nobody is refused, test_api).
    factories.employees(1, prefix="sales", department="Sales")
    factories.employees(1, prefix="support", department="Support")
    url = path.replace("{id}", str(target_of(admin, path)))
    response = admin.call(method, url, example, headers=headers)
    assert 200 <= response.status_code < 300, response.content


def readme_api_section() -> str:
    text = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    return text.split("\n## REST API\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_names_every_operation_of_the_schema(schema: dict[str, Any]) -> None:
    section = readme_api_section()
    for path, method, _ in operations_of(schema):
        parent, last = path.rsplit("/", 1)
        named = f"{method.upper()} {path}`" in section or f"{method.upper()} {path}?" in section
        grouped = f"{method.upper()} {parent}/" in section and f"`/{last}`" in section
        assert named or grouped, (method, path)
