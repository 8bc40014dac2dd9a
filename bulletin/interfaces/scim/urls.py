"""SCIM 2.0 under /scim/v2/ (bulletin/urls.py): RFC 7644's endpoints, names as it spells them."""

from django.urls import path, re_path

from bulletin.interfaces.scim import views

urlpatterns = [
    path("Users", views.users, name="scim-users"),
    path("Users/.search", views.search, name="scim-users-search"),
    path("Users/<str:pk>", views.user, name="scim-user"),
    # RFC 7644 §3.4.3: a search at the root covers every resource type: Users is the only one.
    path(".search", views.search, name="scim-search"),
    path("ServiceProviderConfig", views.service_provider_config, name="scim-config"),
    path("ResourceTypes", views.resource_types, name="scim-resource-types"),
    path("ResourceTypes/<str:name>", views.resource_type, name="scim-resource-type"),
    path("Schemas", views.schemas, name="scim-schemas"),
    path("Schemas/<str:urn>", views.schema, name="scim-schema"),
    # Anything else (Groups, Bulk, Me, a typo) answers in SCIM's error schema, not an HTML 404.
    re_path(r"^(?P<rest>.*)$", views.nothing_here, name="scim-nothing-here"),
]
