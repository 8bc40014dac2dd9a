"""The NinjaAPI: its routers, its bearer-token security and its JSON errors.

Mounted at /api/v1/ (bulletin/urls.py): the OpenAPI schema is /api/v1/openapi.json and the
interactive docs /api/v1/docs (their assets come from a CDN).
"""

from __future__ import annotations

from ninja import NinjaAPI
from ninja.operation import Operation

from bulletin.interfaces.api import (
    actions,
    announcements,
    deliveries,
    employees,
    engagement,
    errors,
    locations,
    preview,
    reminders,
)

DESCRIPTION = """Schedule company announcements and follow their deliveries.

Authenticate with `Authorization: Bearer blt_…` (`bulletin create_api_token`). Each endpoint
needs a scope on the token (`x-scope`) and a permission of the token's user's role
(`x-permissions`). Errors are JSON: `{"detail": "…"}`, or for 422
`{"detail": [{"field": …, "message": …}]}`; 409 means the announcement's state forbids it.

Locations (where employees work: zone, public-holiday country and subdivision, working week)
are addressed by id; `GET /locations?name=` finds one by its name. Employees name their
location, and the bulk upsert creates a location it does not know yet.
"""


class BulletinAPI(NinjaAPI):
    def get_openapi_operation_id(self, operation: Operation) -> str:
        """The view's own name (e.g. create_announcement): short, stable, and unique here."""
        return operation.view_func.__name__


api = BulletinAPI(urls_namespace="api", version="1", title="Bulletin API", description=DESCRIPTION)
errors.install(api)
api.add_router("/announcements", announcements.router)
api.add_router("/announcements", actions.router)
api.add_router("/announcements", engagement.router)
api.add_router("/", preview.router)
api.add_router("/employees", employees.router)
api.add_router("/locations", locations.router)
api.add_router("/deliveries", deliveries.router)
api.add_router("/occurrences", reminders.router)
