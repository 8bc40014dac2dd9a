"""The OpenAPI document at /api/v1/openapi.json: valid, complete, and declaring bearer auth."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from openapi_spec_validator import validate

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
    "/preview": {"get"},
    "/employees": {"get"},
    "/employees/bulk": {"post"},
    "/employees/{id}/deactivate": {"post"},
    "/deliveries": {"get"},
    "/locations": {"get", "post"},
    "/locations/{id}": {"get", "patch"},
}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


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
