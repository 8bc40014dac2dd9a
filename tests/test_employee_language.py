"""An employee's language, everywhere it comes in: the CSV's ``language`` column, the HR
system's bulk API, SCIM's core ``preferredLanguage`` and the admin. Kept canonical
("pt-br" → "pt-BR"); an unknown tag is refused naming the value (with the CSV's line number),
and nothing is written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from bulletin.domain.models import ApiToken, Employee
from bulletin.domain.roles import ADMINISTRATOR
from bulletin.interfaces import roster
from bulletin.interfaces.scim.resources import preferred_language
from tests import factories

pytestmark = pytest.mark.django_db

HEADER = "email,name,department,location,timezone"


def csv(*rows: str, header: str = f"{HEADER},language") -> bytes:
    return "\n".join([header, *rows]).encode()


def languages() -> dict[str, str]:
    return dict(Employee.objects.values_list("email", "language"))


# --- CSV --------------------------------------------------------------------------------------


def test_the_csv_language_column_is_kept_canonical_and_empty_means_the_default() -> None:
    roster.import_employees(
        csv(
            "ada@example.com,Ada,Eng,,UTC,de",
            "bea@example.com,Bea,Eng,,UTC,pt-br",
            "cy@example.com,Cy,Eng,,UTC,zh_hant",
            "dan@example.com,Dan,Eng,,UTC,",
        )
    )
    assert languages() == {
        "ada@example.com": "de",
        "bea@example.com": "pt-BR",
        "cy@example.com": "zh-Hant",
        "dan@example.com": "",
    }


def test_a_csv_without_the_column_leaves_languages_alone_and_with_it_changes_them() -> None:
    roster.import_employees(csv("ada@example.com,Ada,Eng,,UTC,fr"))
    report = roster.import_employees(csv("ada@example.com,Ada,Sales,,UTC", header=HEADER))
    assert report.updated == 1 and languages() == {"ada@example.com": "fr"}
    preview = roster.preview_employees(csv("ada@example.com,Ada,Sales,,UTC,ja"))
    assert [(c.name, c.old, c.new) for c in preview.rows[0].changes] == [("language", "fr", "ja")]
    roster.import_employees(csv("ada@example.com,Ada,Sales,,UTC,ja"))
    assert languages() == {"ada@example.com": "ja"}


def test_unknown_csv_languages_are_refused_with_their_line_and_value_and_nothing_is_written() -> (
    None
):
    with pytest.raises(roster.ImportRejected) as raised:
        roster.import_employees(
            csv(
                "ada@example.com,Ada,Eng,,UTC,de",
                "bea@example.com,Bea,Eng,,UTC,klingon",
                "cy@example.com,Cy,Eng,,UTC,de",
                "dan@example.com,Dan,Eng,,UTC,en--GB",
            )
        )
    shown = [str(error) for error in raised.value.errors]
    assert shown == [
        "line 3: language: unknown language tag 'klingon' (expected BCP 47, e.g. 'de', 'pt-BR')",
        "line 5: language: unknown language tag 'en--GB' (expected BCP 47, e.g. 'de', 'pt-BR')",
    ]
    assert [error.column for error in raised.value.errors] == ["language", "language"]
    assert not Employee.objects.exists()


# --- the bulk API -----------------------------------------------------------------------------


def api() -> Client:
    user = factories.person("hris", ADMINISTRATOR)
    raw = ApiToken.issue(user, "hris", ["employees:read", "employees:write"])[1]
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def item(email: str, **fields: Any) -> dict[str, Any]:
    name = email.split("@")[0].title()
    return {
        "email": email,
        "name": name,
        "department": "Eng",
        "location": "",
        "timezone": "UTC",
    } | fields


def bulk(client: Client, items: list[dict[str, Any]]) -> Any:
    return client.post("/api/v1/employees/bulk", json.dumps(items), content_type="application/json")


def test_the_bulk_api_takes_and_returns_each_employees_language() -> None:
    client = api()
    reply = bulk(client, [item("ada@example.com", language="pt-br"), item("bea@example.com")])
    assert reply.status_code == 200, reply.content
    listed = client.get("/api/v1/employees").json()["items"]
    assert {e["email"]: e["language"] for e in listed} == {
        "ada@example.com": "pt-BR",
        "bea@example.com": "",
    }
    # Left out: left alone; given empty: back to the organisation's default.
    assert bulk(client, [item("ada@example.com", department="Ops")]).status_code == 200
    assert languages()["ada@example.com"] == "pt-BR"
    assert bulk(client, [item("ada@example.com", language="")]).status_code == 200
    assert languages()["ada@example.com"] == ""


def test_the_bulk_api_refuses_an_unknown_language_naming_it_and_its_item() -> None:
    client = api()
    reply = bulk(
        client, [item("ada@example.com", language="de"), item("bea@example.com", language="xx-")]
    )
    assert reply.status_code == 422, reply.content
    errors = reply.json()["detail"]
    assert len(errors) == 1
    assert errors[0]["field"] == "language" and errors[0]["index"] == 1
    assert "'xx-'" in errors[0]["message"]
    assert not Employee.objects.exists()


# --- SCIM -------------------------------------------------------------------------------------

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
BULLETIN = "urn:bulletin:params:scim:schemas:extension:2.0:User"
SCIM = "application/scim+json"


def scim() -> Client:
    user = factories.person("idp", ADMINISTRATOR)
    raw = ApiToken.issue(user, "identity provider", ["scim"])[1]
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def scim_user(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "schemas": [CORE, BULLETIN],
        "userName": name,
        "displayName": name.title(),
        "emails": [{"value": f"{name}@example.com", "type": "work"}],
        "active": True,
        BULLETIN: {"timeZone": "UTC"},
        **extra,
    }


def send(client: Client, method: str, path: str, body: Any) -> Any:
    return client.generic(method, f"/scim/v2{path}", json.dumps(body), content_type=SCIM)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("de", "de"),
        ("en-us", "en-US"),
        ("da, en-gb;q=0.8, en;q=0.7", "da"),  # RFC 7643 §4.1.1's own example
        ("en;q=0.5, fr-CA;q=0.9", "fr-CA"),  # the heaviest wins, wherever it is
        ("*", ""),
    ],
)
def test_scim_preferred_language_becomes_the_employees_language(given: str, kept: str) -> None:
    client = scim()
    reply = send(client, "POST", "/Users", scim_user("ada", preferredLanguage=given))
    assert reply.status_code == 201, reply.content
    assert reply.json().get("preferredLanguage") == (kept or None)
    assert languages() == {"ada@example.com": kept}


def test_scim_keeps_the_language_when_a_put_leaves_it_out_and_patch_changes_or_removes_it() -> None:
    client = scim()
    created = send(client, "POST", "/Users", scim_user("ada", preferredLanguage="ja")).json()
    path = f"/Users/{created['id']}"
    assert send(client, "PUT", path, scim_user("ada")).status_code == 200
    assert languages() == {"ada@example.com": "ja"}
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "preferredLanguage", "value": "pt-BR"}],
    }
    reply = send(client, "PATCH", path, patch)
    assert reply.status_code == 200, reply.content
    assert reply.json()["preferredLanguage"] == "pt-BR"
    assert languages() == {"ada@example.com": "pt-BR"}
    remove = patch | {"Operations": [{"op": "remove", "path": "preferredLanguage"}]}
    assert send(client, "PATCH", path, remove).status_code == 200
    assert languages() == {"ada@example.com": ""}  # removed: the organisation's default


def test_scim_refuses_an_unknown_preferred_language_naming_the_attribute_and_value() -> None:
    reply = send(scim(), "POST", "/Users", scim_user("ada", preferredLanguage="klingon"))
    assert reply.status_code == 400, reply.content
    body = reply.json()
    assert body["scimType"] == "invalidValue"
    assert body["detail"].startswith("preferredLanguage: unknown language tag 'klingon'")
    assert not Employee.objects.exists()


def test_the_weighted_list_is_read_as_rfc_7231_says() -> None:
    assert preferred_language(None) is None
    assert preferred_language("fr;q=0, de;q=0.1") == "de"  # weight 0: "not acceptable"
    assert preferred_language("en;q=x") == "en;q=x"  # not a weight: refused by its value


# --- the admin --------------------------------------------------------------------------------


def test_the_admin_keeps_a_typed_language_canonical_and_refuses_an_unknown_one(
    admin_client: Client,
) -> None:
    client = admin_client
    person = Employee.objects.create(email="bea@example.com", name="Bea")
    form = {
        "email": "bea@example.com",
        "name": "Bea",
        "department": "",
        "timezone": "UTC",
        "active": "on",
        "language": "pt_br",
    }
    url = f"/admin/bulletin/employee/{person.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    reply = client.post(url, _with_inline_prefixes(page, form))
    assert reply.status_code == 302, reply.content[:2000]
    person.refresh_from_db()
    assert person.language == "pt-BR"
    reply = client.post(url, _with_inline_prefixes(page, form | {"language": "zz-zz-zz-zz"}))
    assert reply.status_code == 200
    assert "unknown language tag &#x27;zz-zz-zz-zz&#x27;" in reply.content.decode()
    person.refresh_from_db()
    assert person.language == "pt-BR"


def _with_inline_prefixes(page: Any, form: dict[str, str]) -> dict[str, str]:
    """The management forms of the page's inlines, under their real prefixes."""
    data = dict(form)
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        for name, field in management.fields.items():
            data[f"{inline.formset.prefix}-{name}"] = str(
                management.initial.get(name, field.initial) or 0
            )
    return data
