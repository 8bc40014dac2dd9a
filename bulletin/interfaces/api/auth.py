"""Bearer tokens for the API: who is calling, with which scopes, and what their role allows.

A request is checked in this order, each failure answered before the body is even parsed:
no token or an unknown/revoked one → 401; a token without the endpoint's scope → 403; a user
whose role lacks the endpoint's permission → 403 (the service layer's own check and message).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja.errors import AuthorizationError
from ninja.security import HttpBearer

from bulletin.dispatch import lifecycle
from bulletin.domain.models import ApiToken
from bulletin.domain.records import hash_token

log = logging.getLogger(__name__)

ANNOUNCEMENTS_READ = "announcements:read"
ANNOUNCEMENTS_WRITE = "announcements:write"
EMPLOYEES_READ = "employees:read"
EMPLOYEES_WRITE = "employees:write"
DELIVERIES_READ = "deliveries:read"
# SCIM provisioning at /scim/v2/ (bulletin.interfaces.scim), for the identity provider.
SCIM = "scim"
SCOPES = (
    ANNOUNCEMENTS_READ,
    ANNOUNCEMENTS_WRITE,
    EMPLOYEES_READ,
    EMPLOYEES_WRITE,
    DELIVERIES_READ,
    SCIM,
)

# Writing last_used_at on every call would make each read a write (and, on SQLite, take the
# one write lock): a minute's precision is enough to tell a live token from a forgotten one.
TOUCH_EVERY = timedelta(minutes=1)


def live_token(raw: str) -> ApiToken | None:
    """The unrevoked token whose secret is ``raw`` (served by the partial index
    token_live_idx: key_hash=? AND revoked_at IS NULL), with its user."""
    if not raw.startswith(ApiToken.PREFIX):
        return None
    return (
        ApiToken.objects.select_related("user")
        .filter(key_hash=hash_token(raw), revoked_at__isnull=True)
        .first()
    )


def touch(token: ApiToken) -> None:
    now = timezone.now()
    if token.last_used_at and now - token.last_used_at < TOUCH_EVERY:
        return
    # Conditional, so concurrent requests write it once.
    stale = ApiToken.objects.filter(pk=token.pk, last_used_at=token.last_used_at)
    stale.update(last_used_at=now)
    token.last_used_at = now


class BearerToken(HttpBearer):
    """``Authorization: Bearer blt_…``, needing one scope and, optionally, permissions."""

    def __init__(self, scope: str, permissions: tuple[str, ...] = ()) -> None:
        assert scope in SCOPES, scope
        super().__init__()
        self.scope, self.permissions = scope, permissions

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        found = live_token(token)
        if found is None or not found.user.is_active:
            return None
        if self.scope not in found.scopes:
            raise AuthorizationError(message=f"this token lacks the scope {self.scope}")
        touch(found)
        request.user = found.user
        for permission in self.permissions:
            lifecycle.require(found.user, permission)  # PermissionDenied → 403
        return found


def needs(scope: str, *permissions: str, example: Any = None) -> dict[str, Any]:
    """Keyword arguments for a route: its auth, and the scope and permissions it documents
    (and, for a route that reads a body, an example of it)."""
    extra: dict[str, Any] = {
        "x-scope": scope,
        "x-permissions": [f"bulletin.{p}" for p in permissions],
    }
    if example is not None:
        extra["requestBody"] = {"content": {"application/json": {"example": example}}}
    return {"auth": BearerToken(scope, permissions), "openapi_extra": extra}
