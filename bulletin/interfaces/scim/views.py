"""The SCIM endpoints (RFC 7644 §3 and §4): Users, the search, and discovery.

Every request carries a Bulletin API token with the scope ``scim`` whose user may add and change
employees; every answer is ``application/scim+json`` (``errors``). Reading and writing a User
is ``resources`` and ``provisioning``; filtering is ``filters``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from scim2_models import (
    Context,
    InvalidSyntaxException,
    ListResponse,
    Meta,
    NotFoundException,
    NotImplementedException,
    PatchOp,
    ResourceType,
    ResponseParameters,
    Schema,
    SearchRequest,
)

from bulletin.domain.models import ApiToken, Employee
from bulletin.interfaces.api.auth import SCIM, live_token, touch
from bulletin.interfaces.scim import provisioning, resources
from bulletin.interfaces.scim.errors import ScimProblem, answers_in_scim, scim_json
from bulletin.interfaces.scim.filters import to_q
from bulletin.interfaces.scim.resources import MAX_RESULTS, POLICY, Model

PERMISSIONS = ("bulletin.add_employee", "bulletin.change_employee")

Handler = Callable[..., Any]


def _authenticated(request: HttpRequest) -> ApiToken:
    """The caller's token: 401 without a live one, 403 without the scope or the rights."""
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    token = live_token(raw.strip()) if scheme.lower() == "bearer" else None
    if token is None or not token.user.is_active:
        raise ScimProblem(401, "a Bulletin API token is required: Authorization: Bearer blt_...")
    if SCIM not in token.scopes:
        raise ScimProblem(403, f"this token lacks the scope {SCIM}")
    if missing := [p for p in PERMISSIONS if not token.user.has_perm(p)]:
        raise ScimProblem(403, f"this token's user lacks the permission {missing[0]}")
    touch(token)
    request.user = token.user
    return token


def endpoint(**methods: Handler) -> Callable[..., Any]:
    """A view answering ``methods`` (by HTTP method) after authentication, 405 otherwise."""

    @csrf_exempt
    @answers_in_scim
    def view(request: HttpRequest, **kwargs: Any) -> Any:
        _authenticated(request)
        handler = methods.get(request.method or "")
        if handler is None:
            allowed = ", ".join(methods)
            raise ScimProblem(405, f"{request.method} is not allowed here (only {allowed})")
        return handler(request, **kwargs)

    return view


def _base(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("scim-users")).removesuffix("/Users")


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        raw = request.body
    except RequestDataTooBig:
        # RFC 7644 §3.12: 413 for a payload larger than the server takes.
        raise ScimProblem(413, "the request body is larger than the server takes") from None
    try:
        payload = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise InvalidSyntaxException(detail="the request body is not JSON") from None
    if not isinstance(payload, dict):
        raise InvalidSyntaxException(detail="the request body is not a JSON object")
    return payload


def _one(request: HttpRequest, employee: Employee, status: int = 200, **extra: str) -> Any:
    """The employee as a SCIM User, honouring ``attributes``/``excludedAttributes``."""
    parameters = ResponseParameters[Model].model_validate(dict(request.GET.items()))
    resource = resources.to_scim(employee, _base(request))
    contexts = {201: Context.RESOURCE_CREATION_RESPONSE, 200: Context.RESOURCE_QUERY_RESPONSE}
    payload = resource.model_dump(scim_ctx=contexts[status], response_parameters=parameters)
    headers = {"ETag": resources.version(employee), **extra}
    return scim_json(payload, status, headers)


def _check_version(request: HttpRequest, employee: Employee) -> None:
    """If-Match (RFC 7644 §3.14): a change to a version the caller has not seen is refused."""
    wanted = request.headers.get("If-Match")
    if wanted and wanted.strip() != "*" and resources.version(employee) not in wanted:
        raise ScimProblem(412, "the User changed since that version (If-Match)")


# --- Users ------------------------------------------------------------------------------------


def list_users(request: HttpRequest) -> Any:
    search = SearchRequest[Model].model_validate(
        dict(request.GET.items()), scim_ctx=Context.SEARCH_REQUEST
    )
    return _listing(request, search)


def search_users(request: HttpRequest) -> Any:
    search = SearchRequest[Model].model_validate(
        _body(request), scim_ctx=Context.SEARCH_REQUEST, scim_policy=POLICY
    )
    return _listing(request, search)


def _listing(request: HttpRequest, search: Any) -> Any:
    """One page of the employees the filter selects, in id order (RFC 7644 §3.4.2.4:
    ``startIndex`` 1-based, ``count`` at most MAX_RESULTS)."""
    employees = provisioning.visible().order_by("pk")
    if search.filter is not None:
        employees = employees.filter(to_q(search.filter.ast))
    total = employees.count()
    start = search.start_index or 1
    count = MAX_RESULTS if search.count is None else min(search.count, MAX_RESULTS)
    page = list(employees[start - 1 : start - 1 + count]) if count else []
    base = _base(request)
    listing = ListResponse[Model](
        total_results=total,
        start_index=start,
        items_per_page=len(page),
        resources=[resources.to_scim(employee, base) for employee in page] or None,
    )
    return scim_json(
        listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=search)
    )


def create_user(request: HttpRequest) -> Any:
    payload = resources.aliased(_body(request))
    target = provisioning.target_of_create(payload)
    current = resources.dumped(target) if target else None
    resource = Model.model_validate(
        resources.completed(payload, current),
        scim_ctx=Context.RESOURCE_CREATION_REQUEST,
        scim_policy=POLICY,
    )
    employee = provisioning.save(resource, target, request.user)
    location = f"{_base(request)}/Users/{employee.pk}"
    return _one(request, employee, 201, Location=location)


def get_user(request: HttpRequest, pk: str) -> Any:
    return _one(request, provisioning.find(pk))


def replace_user(request: HttpRequest, pk: str) -> Any:
    employee = provisioning.find(pk)
    _check_version(request, employee)
    payload = resources.completed(resources.aliased(_body(request)), resources.dumped(employee))
    resource = Model.model_validate(
        payload, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST, scim_policy=POLICY
    )
    return _one(request, provisioning.save(resource, employee, request.user))


def patch_user(request: HttpRequest, pk: str) -> Any:
    employee = provisioning.find(pk)
    _check_version(request, employee)
    patch = PatchOp[Model].model_validate(
        resources.aliased_patch(_body(request)),
        scim_ctx=Context.RESOURCE_PATCH_REQUEST,
        scim_policy=POLICY,
    )
    resource = resources.to_scim(employee, _base(request))
    if patch.patch(resource, scim_policy=POLICY):
        employee = provisioning.save(resource, employee, request.user)
    return _one(request, employee)


def delete_user(request: HttpRequest, pk: str) -> Any:
    employee = provisioning.find(pk)
    _check_version(request, employee)
    provisioning.delete(employee, request.user)
    return HttpResponse(status=204)


users = endpoint(GET=list_users, POST=create_user)
user = endpoint(GET=get_user, PUT=replace_user, PATCH=patch_user, DELETE=delete_user)
search = endpoint(POST=search_users)


# --- Discovery (RFC 7644 §4) ------------------------------------------------------------------


def _described(item: Any, kind: str, location: str) -> Any:
    meta = Meta(resource_type=kind, location=location)
    return item.model_copy(update={"meta": meta})


def _service_provider_config(request: HttpRequest) -> Any:
    location = f"{_base(request)}/ServiceProviderConfig"
    config = _described(resources.CONFIG, "ServiceProviderConfig", location)
    return scim_json(config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


def _resource_types(request: HttpRequest) -> list[ResourceType]:
    location = f"{_base(request)}/ResourceTypes/User"
    return [_described(resources.RESOURCE_TYPE, "ResourceType", location)]


def _schemas(request: HttpRequest) -> list[Schema]:
    base = _base(request)
    return [
        _described(schema, "Schema", f"{base}/Schemas/{schema.id}")
        for schema in resources.PROVIDER.schemas
    ]


def _listed(items: list[Any], kind: type) -> Any:
    listing = ListResponse[kind](  # type: ignore[valid-type]
        total_results=len(items), start_index=1, items_per_page=len(items), resources=items
    )
    return scim_json(listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE))


def _by_id(items: list[Any], wanted: str, what: str) -> Any:
    for item in items:
        if str(item.id).lower() == wanted.lower():
            return scim_json(item.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
    raise NotFoundException(detail=f"no {what} {wanted!r}")


service_provider_config = endpoint(GET=_service_provider_config)
resource_types = endpoint(GET=lambda request: _listed(_resource_types(request), ResourceType))
resource_type = endpoint(
    GET=lambda request, name: _by_id(_resource_types(request), name, "ResourceType")
)
schemas = endpoint(GET=lambda request: _listed(_schemas(request), Schema))
schema = endpoint(GET=lambda request, urn: _by_id(_schemas(request), urn, "Schema"))


# --- What Bulletin does not serve -------------------------------------------------------------

_UNSUPPORTED = {
    "groups": "Groups are not supported: an employee's department comes from the enterprise "
    "extension (urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department)",
}
_NOT_IMPLEMENTED = {
    "bulk": "bulk operations are not supported (ServiceProviderConfig: bulk)",
    "me": "/Me is not supported: the caller is a token, not an employee",
}


def _nothing_here(request: HttpRequest, rest: str) -> Any:
    first = rest.strip("/").split("/")[0].lower()
    if first in _NOT_IMPLEMENTED:
        raise NotImplementedException(detail=_NOT_IMPLEMENTED[first])
    raise NotFoundException(detail=_UNSUPPORTED.get(first, f"no such endpoint: /{rest}"))


nothing_here = endpoint(
    **{method: _nothing_here for method in ("GET", "POST", "PUT", "PATCH", "DELETE")}
)
