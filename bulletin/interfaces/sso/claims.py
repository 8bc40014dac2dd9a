"""From the provider's claims to Bulletin: the verified address, and the roles of the groups.

Roles follow the groups claim at every sign-in, added and removed, but only among the roles
``OIDC_GROUP_ROLES`` manages: a role given by hand that no group maps to stays. Superuser and
staff flags are never touched here (the HR screens need only the roles' permissions;
bulletin/interfaces/hr/access.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group, User

log = logging.getLogger(__name__)


class GroupsUnknown(Exception):
    """The token says the groups are elsewhere (Entra ID's overage): roles stay as they are."""


@dataclass(frozen=True)
class RoleChange:
    added: frozenset[str]
    removed: frozenset[str]


def verified_email(claims: dict[str, Any]) -> str:
    """The address, only when the provider says it verified it ("" otherwise).

    OpenID Connect Core §5.1: ``email_verified`` is a boolean; a few providers send the string
    "true", which is taken too. Microsoft Entra ID sends no ``email_verified``; its optional
    claim ``xms_edov`` ("email domain owner verified", Entra's optional claims reference) says
    the address's domain is one the tenant proved it owns, which is taken instead."""
    email = claims.get("email")
    verified = claims.get("email_verified")
    if not isinstance(email, str) or "@" not in email:
        return ""
    if verified is True or verified == "true" or claims.get("xms_edov") is True:
        return email.strip()
    return ""


def groups_in(claims: dict[str, Any], claim: str) -> set[str]:
    """The groups the ``claim`` lists (an array, or one string); GroupsUnknown on an overage.

    Microsoft Entra ID leaves ``groups`` out of the token past 200 groups (JWT) and names the
    claim in ``_claim_names`` instead ("Configure group claims and app roles in tokens",
    learn.microsoft.com, "Group overage claim"): not the same as having no groups."""
    value = claims.get(claim)
    if value is None and claim in (claims.get("_claim_names") or {}):
        raise GroupsUnknown(claim)
    if isinstance(value, str):
        return {value}
    if isinstance(value, list):
        return {item for item in value if isinstance(item, str)}
    return set()


def wanted_roles(groups: set[str], table: dict[str, str]) -> set[str]:
    return {role for group, role in table.items() if group in groups}


def follow_groups(user: User, groups: set[str], table: dict[str, str]) -> RoleChange:
    """Give ``user`` exactly the managed roles their groups map to; the change made."""
    managed = set(table.values())
    wanted = wanted_roles(groups, table)
    held = set(user.groups.filter(name__in=managed).values_list("name", flat=True))
    added, removed = wanted - held, held - wanted
    if added:
        user.groups.add(*Group.objects.filter(name__in=added))
    if removed:
        user.groups.remove(*Group.objects.filter(name__in=removed))
    if added or removed:
        log.info(
            "roles follow the identity provider's groups",
            extra={"user_id": user.pk, "added": sorted(added), "removed": sorted(removed)},
        )
    return RoleChange(frozenset(added), frozenset(removed))
