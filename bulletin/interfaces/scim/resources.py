"""An employee as SCIM sees them: the User resource Bulletin publishes, its two extensions, and
the translation both ways (an Employee row to a SCIM User; a SCIM User to a row in the CSV
import's shape, so that one upsert path writes both).

The published schema holds only what Bulletin keeps: a provider's other attributes (phone
numbers, addresses, a password...) are accepted and dropped (``ScimPolicy.Unknown.ignore``),
and nothing promises to return them. What Bulletin always has is published as required
(userName, displayName, emails, active, and the Bulletin extension with its timeZone), so a
provider that leaves one out of a request gets it filled in (``completed``) rather than refused.

Mapping (README, "SCIM provisioning"):

- ``id`` the employee's pk; ``userName`` and ``externalId`` kept as given (an employee never
  provisioned shows their email as userName, so a provider's ``userName eq "their@email"``
  finds the person a CSV import created);
- ``emails``: the one of type work (else the first) is Employee.email, Bulletin's key;
- ``displayName`` is Employee.name (else ``name.formatted``, else given and family names, else
  the userName); ``name.givenName``/``name.familyName`` are kept as given;
- ``preferredLanguage`` is Employee.language (see ``preferred_language``);
- ``active``; the enterprise extension's ``department``; Bulletin's extension's ``location``,
  ``timeZone`` (the core ``timezone`` is read as an alias) and ``slackMemberId``.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any

from pydantic import Field
from scim2_models import (
    URN,
    ComplexAttribute,
    Extension,
    Meta,
    Required,
    Resource,
    ResourceType,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Uniqueness,
)

from bulletin.domain.models import Employee

CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BULLETIN = "urn:bulletin:params:scim:schemas:extension:2.0:User"
# Listing more than this at once is refused down to it (RFC 7644 §3.4.2.4: "count" above the
# server's maximum is lowered to it), announced as filter.maxResults.
MAX_RESULTS = 200
# Zones offered as examples (canonicalValues) in /Schemas; any IANA zone is accepted.
ZONES = ["Europe/London", "America/New_York", "Asia/Kolkata", "Australia/Sydney", "UTC"]
# Bulletin's own names of the fields SCIM writes beyond the CSV import's columns.
SCIM_FIELDS = ("scim_user_name", "scim_external_id", "given_name", "family_name")


class Email(ComplexAttribute):
    """One email address; Bulletin keeps one, the work one, as the employee's key."""

    value: Annotated[str | None, Required.true] = None
    type: str | None = Field(default=None, examples=["work"])


class Name(ComplexAttribute):
    """The parts of the employee's name, kept as the provider sends them."""

    family_name: str | None = None
    given_name: str | None = None


class User(Resource[Any]):
    """An employee who receives Bulletin's announcements."""

    __schema__ = URN(CORE)

    user_name: Annotated[str | None, Uniqueness.server, Required.true] = None
    name: Name | None = None
    display_name: Annotated[str | None, Required.true] = None
    emails: Annotated[list[Email] | None, Required.true] = None
    preferred_language: str | None = Field(default=None, examples=["de", "pt-BR"])
    active: Annotated[bool | None, Required.true] = None


class EnterpriseUser(Extension):
    """RFC 7643 §4.3's enterprise extension: Bulletin keeps the department (audiences name
    departments)."""

    __schema__ = URN(ENTERPRISE)

    department: str | None = None


class BulletinUser(Extension):
    """Where the employee works and how Slack knows them."""

    __schema__ = URN(BULLETIN)

    location: str | None = Field(default=None, examples=["London"])
    time_zone: Annotated[str | None, Required.true] = Field(default=None, examples=ZONES)
    slack_member_id: str | None = Field(default=None, examples=["U024BE7LH"])


RESOURCE_TYPE = ResourceType.model_validate(
    {
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "Employees",
        "schema": CORE,
        "schemaExtensions": [
            {"schema": ENTERPRISE, "required": False},
            # Required so that every User carries timeZone; a request without the extension
            # gets it filled in (completed), never refused.
            {"schema": BULLETIN, "required": True},
        ],
    }
)

CONFIG = ServiceProviderConfig.model_validate(
    {
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "A Bulletin API token with the scope scim (bulletin "
                "create_api_token --scopes scim), sent as Authorization: Bearer blt_...",
                "primary": True,
            }
        ],
    }
)

PROVIDER = ScimProvider(
    models=[User, EnterpriseUser, BulletinUser], resource_types=[RESOURCE_TYPE], config=CONFIG
)
# The User with both extensions, as requests are read and answers written.
Model: Any = PROVIDER.model_for("User")
# Identity providers send attributes Bulletin does not keep (Okta a password and a locale,
# Entra ID a title and phone numbers): dropped, never refused. Entra ID's PATCH removes by
# value (its documented group-member removal shape).
POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)


def version(employee: Employee) -> str:
    """A weak entity tag (RFC 7644 §3.14): the last change, to the microsecond."""
    return f'W/"{int(employee.updated_at.timestamp() * 1_000_000)}"'


def user_name(employee: Employee) -> str:
    return employee.scim_user_name or employee.email


def to_scim(employee: Employee, base: str) -> Any:
    """The SCIM User an employee is, ``meta.location`` under ``base`` (…/scim/v2)."""
    resource = Model(
        id=str(employee.pk),
        external_id=employee.scim_external_id or None,
        user_name=user_name(employee),
        display_name=employee.name,
        emails=[Email(value=employee.email, type="work")],
        preferred_language=employee.language or None,
        active=employee.active,
        meta=Meta(
            resource_type="User",
            created=employee.created_at,
            last_modified=employee.updated_at,
            location=f"{base}/Users/{employee.pk}",
            version=version(employee),
        ),
    )
    if employee.given_name or employee.family_name:
        resource.name = Name(
            given_name=employee.given_name or None, family_name=employee.family_name or None
        )
    if employee.department:
        resource[EnterpriseUser] = EnterpriseUser(department=employee.department)
    resource[BulletinUser] = BulletinUser(
        location=employee.location_id or None,
        time_zone=employee.timezone,
        slack_member_id=employee.slack_user_id or None,
    )
    return resource


def dumped(employee: Employee) -> dict[str, Any]:
    """The employee as a request payload would carry them (for filling a request in)."""
    return dict(to_scim(employee, "").model_dump(exclude={"meta", "id"}))


def aliased(payload: dict[str, Any]) -> dict[str, Any]:
    """A request with the aliases Bulletin honours moved to where it keeps them: the core
    ``timezone`` to the Bulletin extension's ``timeZone``, ``name.formatted`` to a missing
    ``displayName``."""
    payload = copy.deepcopy(payload)
    zone = _pop_key(payload, "timezone")
    if zone is not None:
        extension = _key(payload, BULLETIN) or BULLETIN
        own = payload.setdefault(extension, {})
        if isinstance(own, dict) and _find(own, "timeZone") is None:
            own["timeZone"] = zone
    name = payload.get(_key(payload, "name") or "name")
    formatted = _find(name, "formatted") if isinstance(name, dict) else None
    if formatted and not _find(payload, "displayName"):
        payload["displayName"] = formatted
    return payload


def completed(payload: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """A create or replace request with what Bulletin always has filled in: from the
    employee as they are (``current``) when the provider left it out, else derived.

    An extension the request leaves out altogether keeps its values: a provider that maps
    none of Bulletin's extension must not wipe the location HR set."""
    payload = dict(payload)
    current = current or {}
    # preferredLanguage too: a provider that does not map it must not wipe the language HR
    # or a CSV set (a PATCH that removes it does clear it).
    for key in (ENTERPRISE, BULLETIN, "active", "emails", "preferredLanguage"):
        if _key(payload, key) is None and key in current:
            payload[key] = current[key]
    if _key(payload, BULLETIN) is None:
        payload[BULLETIN] = {"timeZone": "UTC"}
    own = payload[_key(payload, BULLETIN) or BULLETIN]
    if isinstance(own, dict) and not _find(own, "timeZone"):
        own["timeZone"] = current.get(BULLETIN, {}).get("timeZone") or ""
    payload.setdefault("active", True)
    _complete_names(payload)
    schemas = payload.get("schemas")
    if isinstance(schemas, list):
        extensions = [key for key in (ENTERPRISE, BULLETIN) if _key(payload, key)]
        payload["schemas"] = [*schemas, *(e for e in extensions if e not in schemas)]
    return payload


def _complete_names(payload: dict[str, Any]) -> None:
    if not _find(payload, "displayName"):
        name = payload.get(_key(payload, "name") or "name")
        parts = [_find(name, part) for part in ("givenName", "familyName")] if name else []
        joined = " ".join(str(part) for part in parts if part)
        payload["displayName"] = joined or _find(payload, "userName")
    emails = _find(payload, "emails")
    user = _find(payload, "userName")
    if not emails and isinstance(user, str) and "@" in user:
        payload["emails"] = [{"value": user, "type": "work"}]


def _key(payload: Any, name: str) -> str | None:
    """The key ``payload`` spells ``name`` with (attribute names ignore case, RFC 7643 §2.1)."""
    if not isinstance(payload, dict):
        return None
    return next((key for key in payload if key.lower() == name.lower()), None)


def _find(payload: Any, name: str) -> Any:
    key = _key(payload, name)
    return None if key is None else payload[key]


def _pop_key(payload: dict[str, Any], name: str) -> Any:
    key = _key(payload, name)
    return None if key is None else payload.pop(key)


def work_email(resource: Any) -> str:
    """The work email (else the first): Employee.email."""
    emails = [email for email in resource.emails or [] if email.value]
    work = [email for email in emails if (email.type or "").lower() == "work"]
    chosen = (work or emails)[0].value if emails else ""
    return str(chosen).strip().lower()


def to_row(resource: Any) -> tuple[dict[str, str], dict[str, str]]:
    """The employee a SCIM User describes: a row in the CSV import's shape (``roster``'s
    columns) and the fields only SCIM sets (``SCIM_FIELDS`` and the Slack member id)."""
    enterprise = resource[EnterpriseUser] or EnterpriseUser()
    own = resource[BulletinUser] or BulletinUser()
    row = {
        "email": work_email(resource),
        "name": (resource.display_name or "").strip(),
        "department": (enterprise.department or "").strip(),
        "location": (own.location or "").strip(),
        "timezone": (own.time_zone or "").strip(),
        "active": "false" if resource.active is False else "true",
    }
    row["language"] = preferred_language(resource.preferred_language) or ""
    name = resource.name or Name()
    extra = {
        "scim_user_name": (resource.user_name or "").strip(),
        "scim_external_id": (resource.external_id or "").strip(),
        "given_name": (name.given_name or "").strip(),
        "family_name": (name.family_name or "").strip(),
        "slack_user_id": (own.slack_member_id or "").strip(),
    }
    return row, extra


def preferred_language(value: str | None) -> str | None:
    """The one tag Employee.language keeps from SCIM's ``preferredLanguage``.

    RFC 7643 §4.1.1: "Valid values are language tags as defined in [RFC7231]" (the
    Accept-Language header's), its example "da, en-gb;q=0.8, en;q=0.7": a list with weights.
    Okta and Entra ID send one tag ("en-US"). The tag with the highest weight wins (the first
    among equals); "*" and weight 0 name no language. The tag is checked by the roster.
    """
    if value is None:
        return None
    best, weight = "", 0.0
    for item in value.split(","):
        tag, _, params = item.strip().partition(";")
        q = params.strip().removeprefix("q=").strip() if params else "1"
        try:
            chosen = float(q)
        except ValueError:
            return item.strip()  # not a weight: the roster refuses it by its value
        if tag.strip() not in ("", "*") and chosen > weight:
            best, weight = tag.strip(), chosen
    return best


# Where each of the employee's fields sits in SCIM, to name the attribute an error is about.
ATTRIBUTE_OF = {
    "email": "emails",
    "name": "displayName",
    "department": f"{ENTERPRISE}:department",
    "location": f"{BULLETIN}:location",
    "timezone": f"{BULLETIN}:timeZone",
    "active": "active",
    "country": f"{BULLETIN}:location",
    "subdivision": f"{BULLETIN}:location",
    "working_week": f"{BULLETIN}:location",
    "scim_user_name": "userName",
    "scim_external_id": "externalId",
    "given_name": "name.givenName",
    "family_name": "name.familyName",
    "slack_user_id": f"{BULLETIN}:slackMemberId",
    "language": "preferredLanguage",
}


def aliased_patch(payload: dict[str, Any]) -> dict[str, Any]:
    """A PATCH request with ``aliased``'s aliases: a path to the core ``timezone`` goes to
    the Bulletin extension's ``timeZone``, and a value without a path is ``aliased``."""
    payload = copy.deepcopy(payload)
    operations = _find(payload, "Operations")
    for operation in operations if isinstance(operations, list) else []:
        if not isinstance(operation, dict):
            continue
        path = _key(operation, "path")
        value = _key(operation, "value")
        if path and str(operation[path]).strip().lower() == "timezone":
            operation[path] = f"{BULLETIN}:timeZone"
        elif not (path and operation[path]) and value and isinstance(operation[value], dict):
            operation[value] = aliased(operation[value])
    return payload
