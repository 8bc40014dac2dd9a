"""URLs for employees: the in-app inbox and channel preferences.

Login and logout live under ``accounts/``, Django's default ``LOGIN_URL``; after logging in
without a ``next`` page an employee lands on the inbox.
"""

from django.urls import URLPattern, path, reverse_lazy

from bulletin.interfaces import inbox
from bulletin.interfaces.announcement_page import acknowledge as announcement_acknowledge
from bulletin.interfaces.announcement_page import announcement_page
from bulletin.interfaces.sso import views as sso_views

app_name = "inbox"

urlpatterns: list[URLPattern] = [
    path("inbox/", inbox.inbox, name="list"),
    path("inbox/read/", inbox.mark_all_read, name="read-all"),
    path("inbox/<int:pk>/", inbox.item_detail, name="item"),
    path("inbox/<int:pk>/acknowledge/", inbox.acknowledge, name="acknowledge"),
    path("preferences/", inbox.preferences, name="preferences"),
    # Where a Slack or Teams message cut to fit links to (bulletin.dispatch.compose).
    path("announcements/<int:pk>/", announcement_page, name="announcement"),
    path(
        "announcements/<int:pk>/acknowledge/",
        announcement_acknowledge,
        name="announcement-acknowledge",
    ),
    # The login page also offers single sign-on; logging out also ends the session at the
    # identity provider when the session came from it (bulletin.interfaces.sso.views).
    path(
        "accounts/login/",
        sso_views.LoginPage.as_view(next_page=reverse_lazy("inbox:list")),
        name="login",
    ),
    path("accounts/logout/", sso_views.LogOut.as_view(), name="logout"),
]
