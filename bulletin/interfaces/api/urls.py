"""The REST API's URLs, mounted at /api/v1/ by bulletin/urls.py.

Whatever a client sends under /api/v1/ is answered in JSON: a method an endpoint lacks is a
JSON 405, and any path that names no endpoint (the last pattern) a JSON 404.
"""

from django.urls import URLPattern, URLResolver, re_path

from bulletin.interfaces.api.app import api
from bulletin.interfaces.api.errors import json_not_allowed, no_endpoint


def _answering_in_json(
    patterns: list[URLPattern | URLResolver],
) -> list[URLPattern | URLResolver]:
    for pattern in patterns:
        if isinstance(pattern, URLPattern):
            pattern.callback = json_not_allowed(pattern.callback)
    return patterns


_patterns, _app, _namespace = api.urls
urlpatterns = [
    re_path("", (_answering_in_json(_patterns), _app, _namespace)),
    re_path(r"", no_endpoint),
]
