"""mozilla-django-oidc's settings, given by Bulletin (the variables themselves are checked at
start-up by bulletin/conf_sso.py)."""

from __future__ import annotations

from typing import Any

from bulletin.conf_sso import group_roles, logout_origins

__all__ = ["LibrarySettings", "enabled", "group_roles", "library_setting", "logout_origins"]

# mozilla-django-oidc's settings, given here rather than in settings.py: some follow
# ``settings.BULLETIN`` (which tests replace), the rest never change.
_FIXED = {
    "OIDC_USE_PKCE": True,
    "OIDC_PKCE_CODE_CHALLENGE_METHOD": "S256",
    "OIDC_USE_NONCE": True,
    "OIDC_STORE_ID_TOKEN": True,  # the id_token_hint of RP-initiated logout
    "OIDC_TIMEOUT": 10,
    "OIDC_AUTHENTICATION_CALLBACK_URL": "sso:callback",
    "OIDC_OP_LOGOUT_URL_METHOD": "bulletin.interfaces.sso.views.provider_logout_url",
}


def library_setting(attr: str, *default: Any) -> Any:
    """The value of one of mozilla-django-oidc's settings, else Django's own setting."""
    from django.urls import reverse

    from bulletin.conf import options

    if attr in _FIXED:
        return _FIXED[attr]
    if attr == "OIDC_RP_SCOPES":
        return options().oidc_scopes
    if attr == "OIDC_RP_CLIENT_ID":
        return options().oidc_client_id
    if attr == "LOGOUT_REDIRECT_URL":
        return reverse("inbox:login")
    # The library's own defaults otherwise (OIDC_STATE_SIZE…); ImproperlyConfigured as it
    # would raise when a setting without one is missing.
    from mozilla_django_oidc.utils import import_from_settings

    return import_from_settings(attr, *default)


class LibrarySettings:
    """Mixed into the library's views and backend: their settings come from here."""

    def get_settings(self, attr: str, *args: Any) -> Any:
        return library_setting(attr, *args)


def enabled() -> bool:
    from bulletin.conf import options

    return bool(options().oidc_issuer)
