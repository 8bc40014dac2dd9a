"""Locations: list, create, read and change where employees work (zone, public-holiday region,
working week). Addressed by id; ``GET /locations?name=`` finds one by its name.

Read with the employees:read scope, written with employees:write (the HR system that keeps
employees keeps their locations). An unknown country or subdivision code, a zone or a working
week that cannot be read is a 422 naming the field, as every input problem here is.
"""

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from ninja import Router, Status
from ninja.pagination import paginate

from bulletin.domain.models import Location
from bulletin.interfaces.api import examples
from bulletin.interfaces.api.auth import EMPLOYEES_READ, EMPLOYEES_WRITE, needs
from bulletin.interfaces.api.common import Pages, QueryText, found
from bulletin.interfaces.api.outputs import LocationOut
from bulletin.interfaces.api.schemas import LocationIn, LocationPatch, replies
from bulletin.interfaces.locations import renaming_problem

log = logging.getLogger(__name__)
router = Router(tags=["locations"])

# Reading a location tells no more than reading the employees who name it.
READ = needs(EMPLOYEES_READ, "view_employee")


def _counted() -> QuerySet[Location]:
    return Location.objects.annotate(n_employees=Count("employees")).order_by("name", "id")


def _saved(location: Location) -> Location:
    """Validated as the admin validates it (region, zone, working week, unique name), then
    saved; ValidationError (422 naming the field) otherwise."""
    location.full_clean()
    location.save()
    return location


@router.get("", response=replies({200: list[LocationOut]}), **READ)
@paginate(Pages)
def list_locations(request: HttpRequest, name: QueryText | None = None) -> Any:
    """Locations by name; ``name`` finds one (exact match)."""
    rows = _counted()
    return rows.filter(name=name) if name is not None else rows


@router.post(
    "",
    response=replies({201: LocationOut}, 400),
    **needs(EMPLOYEES_WRITE, "add_location", example=examples.NEW_LOCATION),
)
def create_location(request: HttpRequest, payload: LocationIn) -> Any:
    """A new location; its name must be new."""
    values = payload.model_dump(exclude_none=True)
    with transaction.atomic():
        location = _saved(Location(**values))
    log.info("location created", extra={"location_id": location.pk, "actor_id": request.user.pk})
    return Status(201, found(_counted(), location.pk))


@router.get("/{int:id}", response=replies({200: LocationOut}, 404), **READ)
def get_location(request: HttpRequest, id: int) -> Location:
    """One location, with how many employees are in it."""
    return found(_counted(), id)


@router.patch(
    "/{int:id}",
    response=replies({200: LocationOut}, 400, 404, 409),
    **needs(EMPLOYEES_WRITE, "change_location", example=examples.LOCATION_CHANGES),
)
def edit_location(request: HttpRequest, id: int, payload: LocationPatch) -> Any:
    """Change the members given. Deliveries already held keep the window they were given; the
    change applies from the next fan-out. A location with employees keeps its name."""
    location = found(Location.objects.all(), id)
    changes = payload.model_dump(exclude_unset=True)
    if "name" in changes and (why := renaming_problem(location, changes["name"])):
        raise ValidationError(why)  # a conflict with the location's state: 409
    new_country = changes.get("country", location.country).upper()
    if new_country != location.country and "subdivision" not in changes:
        changes["subdivision"] = ""  # the old subdivision was the old country's
    for name, value in changes.items():
        setattr(location, name, value)
    with transaction.atomic():
        _saved(location)
    log.info("location updated", extra={"location_id": id, "actor_id": request.user.pk})
    return found(_counted(), id)
