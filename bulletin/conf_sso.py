"""The single sign-on variables (``OIDC_*``, ``BULLETIN_PASSWORD_LOGIN``), checked once at
start-up: bulletin/conf.py calls ``checked``. Each problem is one ``ImproperlyConfigured`` line
naming the variable, like every other knob. bulletin.interfaces.sso uses what is checked here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from bulletin.domain.roles import ADMINISTRATOR, ROLES

ROLE_NAMES = (*ROLES, ADMINISTRATOR)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def logout_origins(issuer: str) -> list[str]:
    """The origins the logout form's redirect may reach under CSP's form-action: the issuer's,
    where Okta, Entra ID, Keycloak and oidc-provider serve end_session_endpoint."""
    parts = urlsplit(issuer)
    return [f"{parts.scheme}://{parts.netloc}"] if issuer else []


def checked(chosen: Any) -> dict[str, str]:
    """The canonical values of the SSO fields of ``chosen`` (an Options), or one error."""
    issuer = _issuer(chosen.oidc_issuer.strip())
    roles = group_roles(chosen.oidc_group_roles)
    if issuer and not chosen.oidc_client_id.strip():
        raise ImproperlyConfigured("OIDC_CLIENT_ID must be set when OIDC_ISSUER is")
    if not issuer and not chosen.password_login:
        raise ImproperlyConfigured(
            "BULLETIN_PASSWORD_LOGIN=false needs OIDC_ISSUER: without single sign-on only "
            "superusers could sign in"
        )
    scopes = chosen.oidc_scopes.split()
    # Bulletin finds the employee by the verified address: without these two it cannot.
    if issuer and not {"openid", "email"} <= set(scopes):
        raise ImproperlyConfigured(f"OIDC_SCOPES must include openid and email, got {scopes}")
    if not chosen.oidc_groups_claim.strip():
        raise ImproperlyConfigured("OIDC_GROUPS_CLAIM must name a claim, got ''")
    return {
        "oidc_issuer": issuer,
        "oidc_client_id": chosen.oidc_client_id.strip(),
        "oidc_provider_name": chosen.oidc_provider_name.strip() or "single sign-on",
        "oidc_scopes": " ".join(scopes),
        "oidc_groups_claim": chosen.oidc_groups_claim.strip(),
        "oidc_group_roles": "\n".join(f"{group}={role}" for group, role in roles.items()),
    }


def _issuer(raw: str) -> str:
    """OpenID Connect Core §2: the issuer is an https URL without query or fragment; plain http
    is let through on loopback only (a provider on the same machine, the tests')."""
    if not raw:
        return ""
    parts = urlsplit(raw)
    secure = parts.scheme == "https" or (
        parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    )
    if not secure or not parts.hostname or parts.query or parts.fragment or "?" in raw:
        raise ImproperlyConfigured(
            "OIDC_ISSUER must be the provider's https:// issuer URL without query or fragment "
            f"(http:// only on 127.0.0.1 or localhost), got {raw!r}"
        )
    return raw


def group_roles(raw: str) -> dict[str, str]:
    """``OIDC_GROUP_ROLES``: "group=Role" pairs, comma- or newline-separated, as a dict.

    A group may be named once; several groups may give the same role."""
    table: dict[str, str] = {}
    for pair in raw.replace("\n", ",").split(","):
        if not pair.strip():
            continue
        group, equals, role = (part.strip() for part in pair.rpartition("="))
        if not equals or not group or not role:
            raise ImproperlyConfigured(
                f"OIDC_GROUP_ROLES must be group=Role pairs separated by commas, got {pair!r}"
            )
        if role not in ROLE_NAMES:
            raise ImproperlyConfigured(
                f"OIDC_GROUP_ROLES: {role!r} is not a role; use one of {', '.join(ROLE_NAMES)}"
            )
        if group in table:
            raise ImproperlyConfigured(f"OIDC_GROUP_ROLES names group {group!r} twice")
        table[group] = role
    return table
