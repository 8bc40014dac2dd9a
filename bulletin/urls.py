from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import include, path

from bulletin.interfaces import probes, signed_pages, unsubscribe

admin.site.site_header = "Bulletin"
admin.site.site_title = "Bulletin"
admin.site.index_title = "Announcements, employees and deliveries"


def home(request: HttpRequest) -> HttpResponseRedirect:
    """HR (anyone who may compose or approve) lands on the HR screens; everyone else in
    their inbox."""
    user = request.user
    hr = user.is_authenticated and (
        user.has_perm("bulletin.add_announcement") or user.has_perm("bulletin.approve_announcement")
    )
    return HttpResponseRedirect("/hr/" if hr else "/inbox/")


urlpatterns = [
    path("", home),
    path("healthz", probes.healthz, name="healthz"),
    path("metrics", probes.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("bulletin.interfaces.api.urls")),
    path("scim/v2/", include("bulletin.interfaces.scim.urls")),
    path("hr/", include("bulletin.interfaces.hr.urls")),
    # Single sign-on: the start and the provider's redirect back (bulletin.interfaces.sso).
    path("oidc/", include("bulletin.interfaces.sso.urls")),
    # Mail providers' bounce and complaint events (bulletin.interfaces.bounce_webhooks).
    path("bounces/webhooks/", include("bulletin.interfaces.bounce_webhook_urls")),
    # RFC 8058 one-click unsubscribe; bulletin.dispatch.unsubscribe.PATH makes the links.
    path("unsubscribe/<str:token>/", unsubscribe.one_click, name="unsubscribe"),
    # An email's signed links (bulletin.dispatch.signed_links makes them).
    path("e/<str:token>/", signed_pages.sign_in, name="sign-in-link"),
    path("preferences/link/<str:token>/", signed_pages.preferences, name="preferences-link"),
    path("acknowledge/<str:token>/", signed_pages.acknowledge, name="acknowledge-link"),
    path("", include("bulletin.interfaces.inbox_urls")),
]
