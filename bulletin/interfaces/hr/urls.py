"""The HR screens, mounted at ``/hr/`` by bulletin/urls.py."""

from django.urls import URLPattern, path

from bulletin.interfaces.hr import (
    endpoints,
    engagement_views,
    exports,
    holds,
    imports,
    invitations,
    reminders,
    suppressions,
    translations,
    views,
)
from bulletin.interfaces.hr.email_preview import email_preview

app_name = "hr"

urlpatterns: list[URLPattern] = [
    path("", views.dashboard, name="dashboard"),
    path("new/", views.compose, name="compose"),
    path("preview/", endpoints.preview, name="preview"),
    path("audience/", endpoints.audience, name="audience"),
    path("fire-times/", endpoints.fire_times, name="fire-times"),
    path("people/", endpoints.people, name="people"),
    path("employees/import/", imports.import_view, name="import"),
    path("employees/invite/", invitations.invite_department, name="invite"),
    path("suppressions/", suppressions.suppression_list, name="suppressions"),
    path("suppressions/<int:pk>/lift/", suppressions.lift, name="suppression-lift"),
    path("bounces/<int:pk>/message.txt", suppressions.raw_bounce, name="bounce-raw"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/edit/", views.edit, name="edit"),
    path("<int:pk>/submit/", views.submit, name="submit"),
    path("<int:pk>/approve/", views.approve, name="approve"),
    path("<int:pk>/pause/", views.pause, name="pause"),
    path("<int:pk>/resume/", views.resume, name="resume"),
    path("<int:pk>/cancel/", views.cancel, name="cancel"),
    path("<int:pk>/send-now/", holds.send_now, name="send-now"),
    path("<int:pk>/retry/", views.retry, name="retry"),
    path("<int:pk>/retry/unknown/", views.retry_unknown, name="retry-unknown"),
    path("<int:pk>/test/", views.send_test, name="test"),
    path("<int:pk>/deliveries.csv", exports.deliveries_csv, name="deliveries-csv"),
    path("<int:pk>/email-preview/", email_preview, name="email-preview"),
    path("<int:pk>/remind/", reminders.send_reminder, name="remind"),
    path("<int:pk>/translations/", translations.language_list, name="translations"),
    path("<int:pk>/translations/<str:language>/", translations.editor, name="translation"),
    path(
        "<int:pk>/translations/<str:language>/remove/",
        translations.remove,
        name="translation-remove",
    ),
    path("<int:pk>/engagement/", engagement_views.figures_page, name="engagement"),
    path("<int:pk>/not-acknowledged/", engagement_views.not_acknowledged, name="not-acknowledged"),
    path(
        "<int:pk>/not-acknowledged.csv",
        engagement_views.not_acknowledged_csv,
        name="not-acknowledged-csv",
    ),
]
