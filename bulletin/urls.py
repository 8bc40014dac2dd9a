from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import include, path

admin.site.site_header = "Bulletin"
admin.site.site_title = "Bulletin"
admin.site.index_title = "Announcements, employees and deliveries"


def home(request: HttpRequest) -> HttpResponseRedirect:
    """HR staff land in the admin; everyone else in their inbox."""
    staff = request.user.is_authenticated and request.user.is_staff
    return HttpResponseRedirect("/admin/" if staff else "/inbox/")


urlpatterns = [
    path("", home),
    path("admin/", admin.site.urls),
    path("", include("bulletin.interfaces.inbox_urls")),
]
