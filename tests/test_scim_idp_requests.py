"""The requests Okta and Microsoft Entra ID send, in the shapes their provisioning documentation
shows, replayed against Bulletin's SCIM server: each must be understood and leave the employee
an administrator would expect.

Okta: "Okta and SCIM Version 2.0",
https://developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20 (check the user exists
with ``filter=userName eq "…"&startIndex=1&count=100``, create with POST, update with PUT of the
whole user, deactivate with PATCH ``{"op": "replace", "value": {"active": false}}``).

Entra ID: "Tutorial: Develop and plan provisioning for a SCIM endpoint in Microsoft Entra ID",
https://learn.microsoft.com/en-us/entra/identity/app-provisioning/use-scim-to-provision-users-and-groups
(query by ``userName eq``, create with the enterprise extension, PATCH with ``"op": "Replace"``
capitalised and a path ``emails[type eq "work"].value``), and "Known issues and resolutions
with SCIM 2.0 protocol compliance of the Microsoft Entra user provisioning service",
https://learn.microsoft.com/en-us/entra/identity/app-provisioning/application-provisioning-config-problem-scim-compatibility
(booleans sent as the strings "True"/"False", a PATCH without a path whose value is an object
of attribute paths).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client

from bulletin.domain.models import ApiToken, Employee
from bulletin.domain.roles import ADMINISTRATOR
from tests import factories

pytestmark = pytest.mark.django_db

SCIM = "application/scim+json"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


class Provider:
    """An identity provider's calls: JSON in and out, with its bearer token."""

    def __init__(self) -> None:
        admin = factories.person("idp", ADMINISTRATOR)
        raw = ApiToken.issue(admin, "identity provider", ["scim"])[1]
        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}", enforce_csrf_checks=True)

    def send(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        data = json.dumps(body) if body is not None else ""
        response = self.client.generic(method, f"/scim/v2{path}", data, content_type=SCIM)
        assert response.status_code == status, response.content
        assert response.status_code == 204 or response["Content-Type"] == SCIM
        return response.json() if response.content else None


@pytest.fixture
def idp() -> Provider:
    return Provider()


# --- Okta ---------------------------------------------------------------------------------

OKTA_USER = {
    "schemas": [CORE],
    "userName": "test.user@okta.local",
    "name": {"givenName": "Test", "familyName": "User"},
    "emails": [{"primary": True, "value": "test.user@okta.local", "type": "work"}],
    "displayName": "Test User",
    "locale": "en-US",
    "externalId": "00ujl29u0le5T6Aj10h7",
    "groups": [],
    "password": "1mz050nq",
    "active": True,
}


def okta_lookup(idp: Provider, user_name: str) -> Any:
    query = quote(f'userName eq "{user_name}"')
    return idp.send("GET", f"/Users?filter={query}&startIndex=1&count=100")


def test_okta_finds_nobody_then_creates_the_user_and_then_finds_them(idp: Provider) -> None:
    empty = okta_lookup(idp, "test.user@okta.local")
    assert (empty["totalResults"], empty.get("Resources", [])) == (0, [])
    assert empty["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]

    created = idp.send("POST", "/Users", OKTA_USER, 201)
    assert created["userName"] == "test.user@okta.local" and created["active"] is True
    employee = Employee.objects.get(pk=int(created["id"]))
    assert (employee.email, employee.name, employee.given_name) == (
        "test.user@okta.local",
        "Test User",
        "Test",
    )
    assert employee.scim_external_id == "00ujl29u0le5T6Aj10h7" and employee.timezone == "UTC"

    found = okta_lookup(idp, "test.user@okta.local")
    assert (found["totalResults"], found["startIndex"], found["itemsPerPage"]) == (1, 1, 1)
    assert found["Resources"][0]["id"] == created["id"]


def test_okta_updates_the_user_with_a_put_of_the_whole_user(idp: Provider) -> None:
    created = idp.send("POST", "/Users", OKTA_USER, 201)
    replaced = {
        **OKTA_USER,
        "id": created["id"],
        "name": {"givenName": "Another", "familyName": "User"},
        "displayName": "Another User",
        "meta": {"resourceType": "User"},
    }
    answer = idp.send("PUT", f"/Users/{created['id']}", replaced)
    assert answer["displayName"] == "Another User"
    assert answer["name"] == {"givenName": "Another", "familyName": "User"}
    assert Employee.objects.get(pk=int(created["id"])).name == "Another User"


def test_okta_deactivates_the_user_with_a_patch_of_active_false(idp: Provider) -> None:
    created = idp.send("POST", "/Users", OKTA_USER, 201)
    patch = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": False}}]}
    answer = idp.send("PATCH", f"/Users/{created['id']}", patch)
    assert answer["active"] is False
    assert Employee.objects.get(pk=int(created["id"])).active is False
    # Okta's reactivation is the same PATCH with true.
    patch["Operations"][0]["value"] = {"active": True}
    assert idp.send("PATCH", f"/Users/{created['id']}", patch)["active"] is True


# --- Microsoft Entra ID -------------------------------------------------------------------

ENTRA_USER = {
    "schemas": [CORE, ENTERPRISE],
    "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
    "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
    "active": True,
    "emails": [
        {
            "primary": True,
            "type": "work",
            "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com",
        }
    ],
    "meta": {"resourceType": "User"},
    "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "gn"},
    "roles": [],
    ENTERPRISE: {"department": "Sales", "employeeNumber": "701984", "costCenter": "4130"},
}


def entra_created(idp: Provider) -> Any:
    return idp.send("POST", "/Users", ENTRA_USER, 201)


def test_entra_queries_by_user_name_then_creates_the_user_with_the_enterprise_extension(
    idp: Provider,
) -> None:
    query = quote('userName eq "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1"')
    assert idp.send("GET", f"/Users?filter={query}")["totalResults"] == 0
    created = entra_created(idp)
    assert created[ENTERPRISE] == {"department": "Sales"}
    employee = Employee.objects.get(pk=int(created["id"]))
    # Entra sends no displayName here: the formatted name stands in for it.
    assert (employee.department, employee.name) == ("Sales", "givenName familyName")
    assert employee.email == "test_user_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"
    assert idp.send("GET", f"/Users?filter={query}")["Resources"][0]["id"] == created["id"]


def test_entra_patches_with_capitalised_ops_and_string_booleans(idp: Provider) -> None:
    created = entra_created(idp)
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    }
    assert idp.send("PATCH", f"/Users/{created['id']}", patch)["active"] is False
    assert Employee.objects.get(pk=int(created["id"])).active is False
    patch["Operations"][0]["value"] = "True"
    assert idp.send("PATCH", f"/Users/{created['id']}", patch)["active"] is True


def test_entra_changes_the_work_email_through_its_filtered_path(idp: Provider) -> None:
    created = entra_created(idp)
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [
            {
                "op": "Replace",
                "path": 'emails[type eq "work"].value',
                "value": "updatedEmail@microsoft.com",
            },
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
        ],
    }
    answer = idp.send("PATCH", f"/Users/{created['id']}", patch)
    assert answer["emails"] == [{"value": "updatedemail@microsoft.com", "type": "work"}]
    employee = Employee.objects.get(pk=int(created["id"]))
    assert (employee.email, employee.family_name) == (
        "updatedemail@microsoft.com",
        "updatedFamilyName",
    )
    work = quote('emails[type eq "work"].value eq "updatedEmail@microsoft.com"')
    assert idp.send("GET", f"/Users?filter={work}")["Resources"][0]["id"] == created["id"]


def test_entra_patches_without_a_path_with_an_object_of_values(idp: Provider) -> None:
    created = entra_created(idp)
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [
            {
                "op": "Replace",
                "value": {
                    "displayName": "New Display Name",
                    "name.givenName": "New",
                    "active": "False",
                    f"{ENTERPRISE}:department": "Support",
                },
            }
        ],
    }
    answer = idp.send("PATCH", f"/Users/{created['id']}", patch)
    assert (answer["displayName"], answer["active"]) == ("New Display Name", False)
    employee = Employee.objects.get(pk=int(created["id"]))
    assert (employee.name, employee.given_name, employee.department, employee.active) == (
        "New Display Name",
        "New",
        "Support",
        False,
    )


def test_entra_finds_a_user_by_external_id_and_by_the_and_of_two_filters(idp: Provider) -> None:
    created = entra_created(idp)
    by_id = quote('externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"')
    assert idp.send("GET", f"/Users?filter={by_id}")["Resources"][0]["id"] == created["id"]
    both = quote('externalId eq "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef" and active eq true')
    assert idp.send("GET", f"/Users?filter={both}")["totalResults"] == 1
    other = quote('externalId eq "0A21F0F2-8D2A-4F8E-BF98-7363C4AED4EF"')  # caseExact
    assert idp.send("GET", f"/Users?filter={other}")["totalResults"] == 0
