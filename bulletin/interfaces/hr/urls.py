"""Placeholder until the HR screens land: no routes yet."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
