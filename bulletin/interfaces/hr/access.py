"""Who may see which HR screen: a login, then Django permissions (the roles in domain/roles.py).

A person without the permission gets a plain 403 page that says what is missing, never a
traceback; the service layer's own PermissionDenied (self-approval, a role without the right)
is turned into the same page, or into JSON for the small endpoints the compose page calls.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render

View = Callable[..., HttpResponseBase]

# What each permission lets a person do, in words for the 403 page.
_WHAT = {
    "view_announcement": "see announcements",
    "add_announcement": "write announcements",
    "change_announcement": "edit announcements",
    "schedule_announcement": "schedule, pause, resume or cancel announcements",
    "approve_announcement": "approve announcements",
    "retry_delivery": "retry deliveries",
    "view_delivery": "see deliveries",
    "view_employee": "see employees",
    "add_employee": "add employees",
    "change_employee": "change employees",
}


def forbidden(request: HttpRequest, reason: str = "") -> HttpResponseBase:
    reason = reason[:1].upper() + reason[1:]
    return render(request, "bulletin/hr/forbidden.html", {"reason": reason}, status=403)


def missing(user: Any, permissions: tuple[str, ...]) -> list[str]:
    return [name for name in permissions if not user.has_perm(f"bulletin.{name}")]


def hr_view(*permissions: str, json: bool = False) -> Callable[[View], View]:
    """Require a login and every named ``bulletin.*`` permission; turn PermissionDenied into a
    403 (HTML, or ``{"error": …}`` for ``json`` endpoints)."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            user: Any = request.user
            if not user.is_authenticated:
                if json:
                    return JsonResponse({"error": "Please log in again."}, status=401)
                return redirect_to_login(request.get_full_path())
            lacking = missing(user, permissions)
            try:
                if lacking:
                    what = ", ".join(_WHAT.get(name, name) for name in lacking)
                    raise PermissionDenied(f"Your role does not allow you to {what}.")
                return view(request, *args, **kwargs)
            except PermissionDenied as exc:
                reason = str(exc) or "Your role does not allow this."
                if json:
                    return JsonResponse({"error": reason}, status=403)
                return forbidden(request, reason)

        return wrapper

    return decorate
