from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "Bulletin"
admin.site.site_title = "Bulletin"
admin.site.index_title = "Announcements, employees and deliveries"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("", include("bulletin.interfaces.inbox_urls")),
]
