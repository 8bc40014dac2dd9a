"""A SCIM filter (RFC 7644 §3.4.2.2), as scim2-models parses it, turned into a Django ``Q``
over employees: the database does the filtering and the counting, never Python.

Every attribute the published User schema declares can be filtered on, with every operator
that makes sense for it (``eq``/``ne``/``co``/``sw``/``ew``/``pr`` on text, ``eq``/``ne`` on
``active``, ``gt``/``ge``/``lt``/``le`` on ``meta.created`` and ``meta.lastModified``); ``and``,
``or``, ``not`` and value paths (``emails[type eq "work"].value eq "x"``, which scim2-models
reads as ``emails[type eq "work" and value eq "x"]``) combine them. Anything else is refused
with ``invalidFilter`` naming the attribute.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from operator import and_, or_
from typing import Any

from django.db.models import Q
from scim2_models import InvalidFilterException
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)

from bulletin.interfaces.scim.resources import BULLETIN, CORE, ENTERPRISE

_TEXT_LOOKUPS = {
    CompareOperator.eq: "iexact",
    CompareOperator.co: "icontains",
    CompareOperator.sw: "istartswith",
    CompareOperator.ew: "iendswith",
}
_CASE_EXACT_LOOKUPS = {
    CompareOperator.eq: "exact",
    CompareOperator.co: "contains",
    CompareOperator.sw: "startswith",
    CompareOperator.ew: "endswith",
}
_ORDER_LOOKUPS = {
    CompareOperator.gt: "gt",
    CompareOperator.ge: "gte",
    CompareOperator.lt: "lt",
    CompareOperator.le: "lte",
}
NOTHING = Q(pk__in=[])


def _user_name(op: CompareOperator, value: Any) -> Q:
    # An employee never provisioned shows their email as userName (resources.user_name).
    claimed = _text("scim_user_name", op, value)
    unclaimed = Q(scim_user_name="") & _text("email", op, value)
    return claimed | unclaimed


def _text(field: str, op: CompareOperator, value: Any, *, exact: bool = False) -> Q:
    lookups = _CASE_EXACT_LOOKUPS if exact else _TEXT_LOOKUPS
    if op == CompareOperator.ne:
        return ~Q(**{f"{field}__{lookups[CompareOperator.eq]}": value})
    if op not in lookups:
        raise InvalidFilterException(detail=f"'{op}' cannot compare text")
    if value is None:
        raise InvalidFilterException(detail="compare text with a string, not null")
    return Q(**{f"{field}__{lookups[op]}": str(value)})


def _email_type(op: CompareOperator, value: Any) -> Q:
    # Bulletin keeps one email, of type work.
    matches = _matches_text("work", op, value)
    return Q() if matches else NOTHING


def _matches_text(kept: str, op: CompareOperator, value: Any) -> bool:
    wanted = str(value).lower()
    tests: dict[CompareOperator, Callable[[str], bool]] = {
        CompareOperator.eq: lambda k: k == wanted,
        CompareOperator.ne: lambda k: k != wanted,
        CompareOperator.co: lambda k: wanted in k,
        CompareOperator.sw: lambda k: k.startswith(wanted),
        CompareOperator.ew: lambda k: k.endswith(wanted),
    }
    if op not in tests:
        raise InvalidFilterException(detail=f"'{op}' cannot compare text")
    return tests[op](kept)


def _active(op: CompareOperator, value: Any) -> Q:
    flag = _boolean(value)
    if op == CompareOperator.eq:
        return Q(active=flag)
    if op == CompareOperator.ne:
        return ~Q(active=flag)
    raise InvalidFilterException(detail=f"'{op}' cannot compare active, a boolean")


def _boolean(value: Any) -> bool:
    # Entra ID writes booleans as strings ("True") in PATCH values: take them here too.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidFilterException(detail=f"active is compared with true or false, not {value!r}")


def _moment(field: str) -> Callable[[CompareOperator, Any], Q]:
    def compare(op: CompareOperator, value: Any) -> Q:
        if op in _ORDER_LOOKUPS:
            return Q(**{f"{field}__{_ORDER_LOOKUPS[op]}": value})
        if op == CompareOperator.eq:
            return Q(**{field: value})
        raise InvalidFilterException(detail=f"'{op}' cannot compare a date-time")

    return compare


def _id(op: CompareOperator, value: Any) -> Q:
    if op != CompareOperator.eq or not str(value).isdigit():
        return NOTHING if op == CompareOperator.eq else ~Q(pk=str(value))
    return Q(pk=int(str(value)))


def _field(name: str, *, exact: bool = False) -> Callable[[CompareOperator, Any], Q]:
    return lambda op, value: _text(name, op, value, exact=exact)


# Each attribute (lower case, its schema's URN spelt out) and how to compare it.
_COMPARE: dict[str, Callable[[CompareOperator, Any], Q]] = {
    f"{CORE}:id": _id,
    f"{CORE}:username": _user_name,
    f"{CORE}:externalid": _field("scim_external_id", exact=True),
    f"{CORE}:displayname": _field("name"),
    f"{CORE}:name.givenname": _field("given_name"),
    f"{CORE}:name.familyname": _field("family_name"),
    f"{CORE}:emails": _field("email"),
    f"{CORE}:emails.value": _field("email"),
    f"{CORE}:emails.type": _email_type,
    f"{CORE}:active": _active,
    f"{CORE}:meta.created": _moment("created_at"),
    f"{CORE}:meta.lastmodified": _moment("updated_at"),
    f"{ENTERPRISE}:department": _field("department"),
    f"{BULLETIN}:location": _field("location_id"),
    f"{BULLETIN}:timezone": _field("timezone"),
    f"{BULLETIN}:slackmemberid": _field("slack_user_id", exact=True),
}
# What "attr pr" (present) means for each attribute that can be empty.
_PRESENT = {
    f"{CORE}:externalid": ~Q(scim_external_id=""),
    f"{CORE}:name": ~Q(given_name="") | ~Q(family_name=""),
    f"{CORE}:name.givenname": ~Q(given_name=""),
    f"{CORE}:name.familyname": ~Q(family_name=""),
    f"{ENTERPRISE}:department": ~Q(department=""),
    f"{BULLETIN}:location": Q(location__isnull=False),
    f"{BULLETIN}:slackmemberid": ~Q(slack_user_id=""),
}


def _qualified(path: AttrPath, prefix: str = "") -> str:
    """The attribute's full name, lower case: ``urn:…:User:emails.value``."""
    uri = (path.uri or CORE).lower()
    name = f"{prefix}{path.attr}" + (f".{path.sub_attr}" if path.sub_attr else "")
    return f"{uri}:{name.lower()}"


def _known(key: str) -> str:
    for known in (*_COMPARE, *_PRESENT):
        if known.lower() == key:
            return known
    raise InvalidFilterException(detail=f"cannot filter on '{key.rsplit(':', 1)[-1]}'")


def to_q(node: FilterNode, prefix: str = "", uri: str | None = None) -> Q:
    """The employees ``node`` selects; InvalidFilterException for what Bulletin cannot
    filter on."""
    if isinstance(node, LogicalExpr):
        parts = [to_q(term, prefix, uri) for term in node.terms]
        return reduce(and_ if node.op == LogicalOperator.and_ else or_, parts)
    if isinstance(node, Not):
        return ~to_q(node.expr, prefix, uri)
    if isinstance(node, ValuePath):
        inner = f"{node.attr_path.attr}."
        return to_q(node.val_filter, inner, node.attr_path.uri)
    if isinstance(node, Present):
        key = _known(_qualified(_in(node.attr_path, uri), prefix))
        return _PRESENT.get(key, Q())
    if isinstance(node, Comparison):
        key = _known(_qualified(_in(node.attr_path, uri), prefix))
        if key not in _COMPARE:
            raise InvalidFilterException(detail=f"cannot compare '{key.rsplit(':', 1)[-1]}'")
        return _COMPARE[key](node.op, node.value)
    raise InvalidFilterException(detail=f"cannot filter with {node}")


def _in(path: AttrPath, uri: str | None) -> AttrPath:
    """A value path's sub-attribute takes the URN of the attribute it selects in."""
    if uri and not path.uri:
        return AttrPath(path.attr, path.sub_attr, uri)
    return path
