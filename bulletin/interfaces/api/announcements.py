"""Announcements: list, create, read, edit and delete drafts, their occurrences and preview.

Thin: each endpoint parses, then hands over to bulletin.dispatch.lifecycle, which checks the
caller's role, validates, records the audit event and logs.
"""

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.pagination import paginate

from bulletin.conf import options
from bulletin.conf_email import SenderNotAllowed, allowed_sender
from bulletin.dispatch import lifecycle
from bulletin.dispatch.announcements import upcoming
from bulletin.dispatch.audience import audience_zones, unmatched
from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    AudienceKind,
    Employee,
    Place,
)
from bulletin.interfaces.api import examples
from bulletin.interfaces.api import translations as languages
from bulletin.interfaces.api.auth import ANNOUNCEMENTS_READ, ANNOUNCEMENTS_WRITE, needs
from bulletin.interfaces.api.common import Pages, found
from bulletin.interfaces.api.errors import Problems, problem
from bulletin.interfaces.api.outputs import (
    AnnouncementOut,
    AnnouncementSummary,
    OccurrenceOut,
    PreviewOut,
)
from bulletin.interfaces.api.preview import fire_time_rows
from bulletin.interfaces.api.schemas import (
    AnnouncementIn,
    AnnouncementPatch,
    model_values,
    replies,
)

log = logging.getLogger(__name__)
router = Router(tags=["announcements"])

READ = needs(ANNOUNCEMENTS_READ, "view_announcement")


def places_named(names: Sequence[str]) -> list[Place]:
    """Places from their "channel:name" labels (e.g. "slack:#general"); 422 naming unknown ones."""
    places, unknown = [], []
    for label in names:
        channel, _, name = label.partition(":")
        place = Place.objects.filter(channel=channel, name=name).first()
        if place is None:
            unknown.append(label)
        else:
            places.append(place)
    if unknown:
        known = ", ".join(str(place) for place in Place.objects.all()) or "none configured"
        raise Problems([problem("places", f"no place {', '.join(unknown)} (known: {known})")])
    return places


def check_names(kind: str, names: list[str] | None) -> None:
    """422 when names are given to an audience that takes none (the service checks the rest:
    at least one, trimmed, not too long)."""
    if names and kind not in (AudienceKind.DEPARTMENT, AudienceKind.LOCATION):
        message = "values apply only to a 'department' or 'location' audience"
        raise Problems([problem("audience_values", message)])


def _audience_of(values: dict[str, Any]) -> dict[str, Any]:
    return {name: values[name] for name in ("audience_kind", "audience_values")}


def check_someone(audience: Announcement, allow_empty: bool) -> None:
    """422 naming each department or location no active employee has, with the closest
    names that exist, unless ``allow_empty`` (a team still to be filled)."""
    if allow_empty or audience.audience_kind not in (
        AudienceKind.DEPARTMENT,
        AudienceKind.LOCATION,
    ):
        return
    if problems := unmatched(audience):
        raise Problems([problem("audience_values", message) for message in problems])


def checked_sender(values: dict[str, Any]) -> None:
    """The sender, if given, as BULLETIN_SENDERS writes it; 422 naming ``sender`` when the
    list does not have it."""
    if "sender" not in values:
        return
    chosen = values["sender"] = str(values["sender"]).strip()
    if not chosen:
        return  # the default sender
    try:
        values["sender"] = allowed_sender(chosen, options().sender_list())
    except SenderNotAllowed as exc:
        raise Problems([problem("sender", str(exc))]) from None


def chosen_people(kind: str, ids: list[int]) -> list[Employee]:
    """The employees of a "list" audience; 422 when they do not fit the audience's kind."""
    if kind != AudienceKind.LIST:
        if ids:
            raise Problems([problem("recipients", "employee_ids apply only to a 'list' audience")])
        return []
    people = list(Employee.objects.filter(pk__in=ids))
    if missing := sorted(set(ids) - {person.pk for person in people}):
        message = f"no employee with id {', '.join(map(str, missing))}"
        raise Problems([problem("recipients", message)])
    if not people:
        raise Problems([problem("recipients", "a 'list' audience needs employee_ids")])
    return people


@router.get("", response=replies({200: list[AnnouncementSummary]}), **READ)
@paginate(Pages)
def list_announcements(request: HttpRequest, status: AnnouncementStatus | None = None) -> Any:
    """Announcements, newest first; ``status`` filters."""
    rows = Announcement.objects.order_by("-created_at", "-id")
    return rows.filter(status=status) if status else rows


@router.post(
    "",
    response=replies({201: AnnouncementOut}, 400),
    **needs(ANNOUNCEMENTS_WRITE, "add_announcement", example=examples.NEW_ANNOUNCEMENT),
)
def create_announcement(request: HttpRequest, payload: AnnouncementIn) -> Any:
    """Save a draft (checked as if it were to be scheduled); ``/schedule`` schedules it."""
    data = payload.model_dump()
    places = places_named(data.pop("places"))
    allow_empty = data["audience"].pop("allow_empty")
    texts, language = data.pop("translations"), languages.language_of(data.pop("language"))
    values = model_values(data) | ({"language": language} if language else {})
    checked_sender(values)
    check_names(values["audience_kind"], values["audience_values"])
    check_someone(Announcement(**_audience_of(values)), allow_empty)
    people = chosen_people(values["audience_kind"], values.pop("recipients"))
    values.setdefault("misfire_grace", timedelta(seconds=options().default_grace_seconds))
    with transaction.atomic():  # a bad translation leaves no draft behind
        item = lifecycle.create(
            Announcement(**values), by=request.user, places=places, recipients=people
        )
        languages.save(item, texts, request.user)
    return Status(201, item)


@router.get("/{int:id}", response=replies({200: AnnouncementOut}, 404), **READ)
def get_announcement(request: HttpRequest, id: int) -> Announcement:
    """One announcement with its current version, approvals and deliveries by state."""
    return found(Announcement.objects.select_related("created_by"), id)


@router.patch(
    "/{int:id}",
    response=replies({200: AnnouncementOut}, 400, 404, 409),
    **needs(ANNOUNCEMENTS_WRITE, "change_announcement", example=examples.ANNOUNCEMENT_CHANGES),
)
def edit_announcement(request: HttpRequest, id: int, payload: AnnouncementPatch) -> Any:
    """Change the members given. New content is a new version; a scheduled announcement
    keeps its cursor (nothing re-fires) or, when approval is required, waits for it again."""
    item = found(Announcement.objects.all(), id)
    data = payload.model_dump(exclude_unset=True)
    places = places_named(data.pop("places")) if "places" in data else None
    allow_empty = bool((data.get("audience") or {}).pop("allow_empty", False))
    texts, removed = data.pop("translations", None), data.pop("remove_translations", None)
    if language := languages.language_of(data.pop("language", None)):
        languages.check_default_change(item, language)
        data["language"] = language
    values = model_values(data)
    checked_sender(values)
    ids = values.pop("recipients", None)
    kind = values.get("audience_kind", item.audience_kind)
    check_names(kind, values.get("audience_values"))
    if "audience_values" in values or "audience_kind" in values:
        names = values.get("audience_values", item.audience_values)
        check_someone(Announcement(audience_kind=kind, audience_values=names), allow_empty)
    people = (
        chosen_people(kind, ids or []) if ids is not None or "audience_kind" in values else None
    )
    with transaction.atomic():  # the service sets the people, so the audit names who changed
        if values or places is not None or people is not None or not (texts or removed):
            lifecycle.edit(item, by=request.user, places=places, recipients=people, **values)
        languages.save(item, texts or [], request.user)
        languages.remove(item, removed or [], request.user)
    item.refresh_from_db()
    return item


@router.delete(
    "/{int:id}",
    response=replies({204: None}, 404, 409),
    **needs(ANNOUNCEMENTS_WRITE, "delete_announcement"),
)
def delete_announcement(request: HttpRequest, id: int) -> Any:
    """Delete a draft. Anything that was ever scheduled is cancelled instead, keeping its
    history."""
    lifecycle.delete_draft(found(Announcement.objects.all(), id), request.user)
    return Status(204, None)


@router.get("/{int:id}/occurrences", response=replies({200: list[OccurrenceOut]}, 404), **READ)
@paginate(Pages)
def list_occurrences(request: HttpRequest, id: int) -> Any:
    """Its occurrences, latest first, each with its deliveries counted by state."""
    item = found(Announcement.objects.all(), id)
    rows = item.occurrences.select_related("version").order_by("-fire_at", "-id")
    return rows


@router.get("/{int:id}/preview", response=replies({200: PreviewOut}, 404), **READ)
def preview_announcement(
    request: HttpRequest, id: int, count: int = Query(10, ge=1, le=100)
) -> dict[str, Any]:
    """Its next fire times (in the first recipient zone when each recipient's zone is used)."""
    item = found(Announcement.objects.all(), id)
    zone = (audience_zones(item) or ("UTC",))[0]
    return {"zone": zone, "fire_times": fire_time_rows(upcoming(item, count))}
