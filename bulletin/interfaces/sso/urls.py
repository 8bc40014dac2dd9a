"""``/oidc/``: where single sign-on starts and where the provider sends the browser back.

The callback's absolute address, ``<site>/oidc/callback/``, is the redirect URI registered at
the identity provider (README, "Single sign-on (OpenID Connect)")."""

from django.urls import URLPattern, path

from bulletin.interfaces.sso import views

app_name = "sso"

urlpatterns: list[URLPattern] = [
    path("authenticate/", views.SignIn.as_view(), name="sign-in"),
    path("callback/", views.Callback.as_view(), name="callback"),
]
