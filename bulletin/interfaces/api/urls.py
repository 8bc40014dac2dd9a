"""The REST API's URLs, mounted at /api/v1/ by bulletin/urls.py."""

from django.urls import path

from bulletin.interfaces.api.app import api

urlpatterns = [path("", api.urls)]
