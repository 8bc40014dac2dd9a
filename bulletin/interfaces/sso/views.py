"""The login page, and mozilla-django-oidc's views with the provider's endpoints from discovery.

- ``LoginPage``: Django's login view, plus the "Sign in with <name>" button; the password form
  only while ``BULLETIN_PASSWORD_LOGIN`` is on, or with ``?password=1`` (the superusers'
  break-glass path; backend.PasswordSwitch refuses everyone else's password).
- ``SignIn`` (``/oidc/authenticate/``): to the provider's authorization endpoint with PKCE S256,
  ``state`` and ``nonce`` (the library keeps them in the session).
- ``Callback`` (``/oidc/callback/``): the library's, every refusal turned into a page.
- ``LogOut`` (``accounts/logout/``, POST): ends the session, and at the provider too through
  ``provider_logout_url`` (OpenID Connect RP-Initiated Logout 1.0 §2) when it offers it.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import views as auth_views
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.generic import View
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
    OIDCLogoutView,
)

from bulletin.conf import options
from bulletin.interfaces.sso import config, discovery
from bulletin.interfaces.sso.refusals import Refused, refused_page

log = logging.getLogger(__name__)


def sso_status() -> dict[str, Any]:
    """What the login page says about single sign-on: off, available, or unavailable."""
    if not config.enabled():
        return {"enabled": False}
    try:
        discovery.provider(options().oidc_issuer)
        available = True
    except discovery.DiscoveryError:
        available = False  # discovery logged why
    return {"enabled": True, "available": available, "name": options().oidc_provider_name}


class LoginPage(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        wants_password = self.request.GET.get("password") == "1" or "password" in self.request.POST
        context["sso"] = sso_status()
        context["password_login"] = options().password_login or wants_password
        context["break_glass"] = not options().password_login and wants_password
        return context


class SignIn(config.LibrarySettings, OIDCAuthenticationRequestView):
    def __init__(self, **kwargs: Any) -> None:
        View.__init__(self, **kwargs)  # the library's reads the endpoint at construction

    def get(self, request: HttpRequest) -> HttpResponse:
        if not config.enabled():
            return refused_page(request, Refused("off"))
        try:
            found = discovery.provider(options().oidc_issuer)
        except discovery.DiscoveryError as exc:
            return refused_page(request, Refused("unreachable", str(exc)))
        self.OIDC_OP_AUTH_ENDPOINT = found.authorization_endpoint
        self.OIDC_RP_CLIENT_ID = options().oidc_client_id
        return super().get(request)  # type: ignore[no-any-return]


class Callback(config.LibrarySettings, OIDCAuthenticationCallbackView):
    def get(self, request: HttpRequest) -> HttpResponse:
        if not config.enabled():
            return refused_page(request, Refused("off"))
        try:
            return super().get(request)  # type: ignore[no-any-return]
        except Refused as refusal:
            return refused_page(request, refusal)
        except SuspiciousOperation as exc:  # the library: a state this session never sent
            return refused_page(request, Refused("state", str(exc)))

    def login_failure(self) -> HttpResponse:
        """The provider sent ?error=… (the person cancelled, or was refused there), or the
        session holds no state at all (a callback opened twice, or from another browser)."""
        error = self.request.GET.get("error", "")
        if error:
            refusal = Refused("provider-error", self.request.GET.get("error_description", ""))
            return refused_page(self.request, refusal, error=error[:100])
        return refused_page(self.request, Refused("state", "no state in the session"))


class LogOut(config.LibrarySettings, OIDCLogoutView):
    """POST only, CSRF-checked, like Django's LogoutView it replaces. Its redirect to the
    provider passes CSP's form-action because settings.py lets the issuer's origin in
    (``config.logout_origins``): Chromium checks the redirect after a form's POST too."""


def provider_logout_url(request: HttpRequest) -> str:
    """Where logging out sends the browser: the provider's end_session_endpoint with the ID
    token as hint when the session came from single sign-on and the provider offers it
    (RP-Initiated Logout §2: id_token_hint, post_logout_redirect_uri, client_id); else the
    login page. The post-logout address must be registered at the provider (README)."""
    login = reverse("inbox:login")
    id_token = request.session.get("oidc_id_token")
    if not id_token or not config.enabled():
        return login
    try:
        endpoint = discovery.provider(options().oidc_issuer).end_session_endpoint
    except discovery.DiscoveryError:
        return login
    if not endpoint:
        return login
    query = {
        "id_token_hint": id_token,
        "post_logout_redirect_uri": request.build_absolute_uri(login),
        "client_id": options().oidc_client_id,
    }
    log.info("signing out at the identity provider too", extra={"user_id": request.user.pk})
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(query)}"
