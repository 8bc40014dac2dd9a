"""The HR screens: dashboard, compose/edit, detail and every action on an announcement.

Views parse and present; every change goes through ``bulletin.dispatch.lifecycle`` (which
checks the role, validates, and writes the audit log). A state change is always a POST with a
CSRF token, and anything that cannot be undone or may duplicate a message asks first.
"""

from __future__ import annotations

import logging
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from bulletin.channels.render import markdown_to_html
from bulletin.conf import options
from bulletin.dispatch import announcements, lifecycle
from bulletin.dispatch.audience import audience_of
from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    Approval,
    Channel,
    Delivery,
    DeliveryState,
    Occurrence,
    OccurrenceState,
)
from bulletin.interfaces.hr import engagement_views, form_checks, holds, translations
from bulletin.interfaces.hr.access import hr_view
from bulletin.interfaces.hr.forms import AnnouncementForm, changed_fields
from bulletin.interfaces.hr.present import (
    Counts,
    audience_summary,
    audit_detail,
    counts_by_announcement,
    counts_by_occurrence,
    display_zone,
    in_zone,
    person_name,
    schedule_summary,
)
from bulletin.interfaces.hr.schedule import Fire, as_fire, zone_or_none
from bulletin.scheduling.rules import ScheduleError

log = logging.getLogger(__name__)

SECTIONS: tuple[tuple[str, str, str], ...] = (
    (AnnouncementStatus.DRAFT, "Drafts", "Not scheduled yet: nothing will be sent."),
    (
        AnnouncementStatus.PENDING_APPROVAL,
        "Waiting for approval",
        "An approver other than the author must approve these before anything is sent.",
    ),
    (AnnouncementStatus.SCHEDULED, "Scheduled", "These will be sent at their next time."),
    (AnnouncementStatus.PAUSED, "Paused", "Nothing is sent until someone resumes them."),
    (AnnouncementStatus.FINISHED, "Finished", "Every send has happened."),
    (AnnouncementStatus.CANCELLED, "Cancelled", "Stopped for good."),
)
SECTION_SIZE = 20
PAGE_SIZE = 50
OCCURRENCES_PER_PAGE = 25


def _user(request: HttpRequest) -> Any:
    return request.user


def _row(item: Announcement, counts: Counts) -> dict[str, Any]:
    return {
        "item": item,
        "schedule": schedule_summary(item),
        "next_fire": in_zone(item.next_fire_at, display_zone(item)),
        "counts": counts,
        "author": person_name(item.created_by) if item.created_by_id else "",
    }


@hr_view("view_announcement")
@require_http_methods(["GET", "HEAD"])
def dashboard(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    base = Announcement.objects.select_related("created_by")
    only = request.GET.get("status")
    sections = []
    for status, heading, hint in SECTIONS:
        if only and only != status:
            continue
        items = base.filter(status=status).order_by(
            "next_fire_at" if status == AnnouncementStatus.SCHEDULED else "-updated_at", "-id"
        )
        if only:
            page = Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))
            shown, total = list(page.object_list), page.paginator.count
        else:
            page, shown, total = None, list(items[:SECTION_SIZE]), items.count()
        counts = counts_by_announcement(item.pk for item in shown)
        sections.append(
            {
                "status": status,
                "heading": heading,
                "hint": hint,
                "rows": [_row(item, counts[item.pk]) for item in shown],
                "total": total,
                "page": page,
            }
        )
    waiting = []
    if user.has_perm("bulletin.approve_announcement"):
        pending = base.filter(status=AnnouncementStatus.PENDING_APPROVAL).order_by("updated_at")
        waiting = [
            {"item": item, "own": _is_own(item, user), "schedule": schedule_summary(item)}
            for item in pending[:50]
        ]
    return render(
        request,
        "bulletin/hr/dashboard.html",
        {
            "sections": sections,
            "only": only,
            "waiting": waiting,
            "can_compose": user.has_perm("bulletin.add_announcement"),
            "can_import": user.has_perm("bulletin.add_employee")
            and user.has_perm("bulletin.change_employee"),
        },
    )


def _is_own(item: Announcement, user: Any) -> bool:
    version = announcements.latest_version(item)
    return user.pk in {item.created_by_id, getattr(version, "created_by_id", None)}


# --- Compose and edit ----------------------------------------------------------------------


def _compose_page(
    request: HttpRequest, form: AnnouncementForm, item: Announcement | None, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "bulletin/hr/compose.html",
        {
            "form": form,
            "item": item,
            "approval_required": options().require_approval,
            "is_draft": item is None or item.status == AnnouncementStatus.DRAFT,
            "can_schedule": _user(request).has_perm("bulletin.schedule_announcement"),
        },
        status=status,
    )


def _scheduled_message(item: Announcement) -> str:
    if item.status == AnnouncementStatus.PENDING_APPROVAL:
        return (
            "Submitted for approval. Nothing is sent until an approver (someone other than "
            "you) approves it."
        )
    when = in_zone(item.next_fire_at, display_zone(item))
    return f"Scheduled. First send: {when}." if when else "Scheduled."


@hr_view("add_announcement")
@require_http_methods(["GET", "HEAD", "POST"])
def compose(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if request.method != "POST":
        return _compose_page(request, AnnouncementForm(user=user), None)
    form = AnnouncementForm(request.POST, user=user)
    action = request.POST.get("action", "draft")
    if not form.is_valid():
        form_checks.check_the_rest(form)
        return _compose_page(request, form, None, status=400)
    item = Announcement(**form.values())
    try:
        with transaction.atomic():
            people = form.recipients_chosen()
            lifecycle.create(item, user, places=form.places_chosen(), recipients=people)
            if action == "schedule":
                lifecycle.submit(item, user)
    except ValidationError as exc:
        form.add_service_errors(exc)
        return _compose_page(request, form, None, status=400)
    if action == "schedule":
        messages.success(request, _scheduled_message(item))
        return redirect("hr:detail", pk=item.pk)
    if action == "test":
        messages.success(request, "Saved as a draft.")
        _send_test(request, item)
        return redirect("hr:edit", pk=item.pk)
    messages.success(request, "Saved as a draft. Nothing is sent until you schedule it.")
    return redirect("hr:detail", pk=item.pk)


@hr_view("change_announcement")
@require_http_methods(["GET", "HEAD", "POST"])
def edit(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    item = get_object_or_404(Announcement, pk=pk)
    if item.status not in lifecycle.EDITABLE:
        messages.error(
            request, f"A {item.get_status_display().lower()} announcement cannot be edited."
        )
        return redirect("hr:detail", pk=item.pk)
    if request.method != "POST":
        return _compose_page(request, AnnouncementForm(announcement=item, user=user), item)
    form = AnnouncementForm(request.POST, announcement=item, user=user)
    action = request.POST.get("action", "save")
    if action == "test":
        return _test_unsaved(request, form, item)
    if not form.is_valid():
        form_checks.check_the_rest(form)
        return _compose_page(request, form, item, status=400)
    before = item.status
    changes = changed_fields(item, form.values())
    places, people = form.places_chosen(), form.recipients_chosen()
    places_changed = {p.pk for p in places} != set(item.places.values_list("pk", flat=True))
    people_changed = {p.pk for p in people} != set(item.recipients.values_list("pk", flat=True))
    edited = bool(changes or places_changed or people_changed)
    try:
        with transaction.atomic():
            if edited:  # the service sets the people, so the audit names who changed
                lifecycle.edit(item, user, places=places, recipients=people, **changes)
            if action == "schedule" and item.status == AnnouncementStatus.DRAFT:
                lifecycle.submit(item, user)
    except ValidationError as exc:
        item.refresh_from_db()
        form.add_service_errors(exc)
        return _compose_page(request, form, item, status=400)
    if action == "schedule" and before == AnnouncementStatus.DRAFT:
        messages.success(request, _scheduled_message(item))
    elif not edited:
        messages.info(request, "Nothing changed.")
    elif before == AnnouncementStatus.SCHEDULED and item.status != before:
        messages.warning(
            request,
            "Saved as a new version. Because it changed, it needs approval again: nothing more "
            "is sent until an approver approves it.",
        )
    else:
        version = announcements.latest_version(item)
        number = version.number if version else 1
        messages.success(
            request,
            f"Saved (version {number}). Sends from now on use it; what was already sent keeps "
            f"its version.",
        )
    return redirect("hr:detail", pk=item.pk)


def _test_unsaved(request: HttpRequest, form: AnnouncementForm, item: Announcement) -> HttpResponse:
    """Email the text being edited to the requester without saving it (no new version)."""
    form.is_valid()
    if "title" in form.errors or "body" in form.errors:
        messages.error(request, "Give it a title and some text before sending a test.")
        return _compose_page(request, form, item, status=400)
    copy = Announcement.objects.get(pk=item.pk)
    copy.title, copy.body = form.cleaned_data["title"], form.cleaned_data["body"]
    if _send_test(request, copy):
        messages.info(request, "Your changes are not saved yet.")
    form.errors.clear()
    return _compose_page(request, form, item)


def _send_test(request: HttpRequest, item: Announcement) -> bool:
    try:
        address = lifecycle.send_test(item, _user(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return False
    messages.success(
        request,
        f"Test sent to {address}. Only you received it; nothing was scheduled or recorded "
        f"as a delivery.",
    )
    return True


# --- Detail -------------------------------------------------------------------------------


@hr_view("view_announcement")
@require_http_methods(["GET", "HEAD"])
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    item = get_object_or_404(Announcement.objects.select_related("created_by"), pk=pk)
    zone = display_zone(item)
    # The default language's versions; each translation's are on its own page (translations.py).
    defaults = item.versions.filter(language=item.language)
    versions = list(defaults.select_related("created_by").order_by("-number"))
    current = versions[0] if versions else None
    approvals = list(
        Approval.objects.filter(announcement=item)
        .select_related("approved_by", "version")
        .order_by("-approved_at")
    )
    approved_versions = {a.version_id: a for a in approvals}
    occurrence_counts = counts_by_occurrence(item)
    totals = sum(occurrence_counts.values(), Counts())
    occurrences = item.occurrences.select_related("version").order_by("-fire_at", "-id")
    page = Paginator(occurrences, OCCURRENCES_PER_PAGE).get_page(request.GET.get("page"))
    occurrence_rows = [
        {
            "occurrence": occurrence,
            "fire": in_zone(occurrence.fire_at, _zone_named(occurrence.zone, zone)),
            "counts": occurrence_counts[occurrence.pk],
            "missed": occurrence.state == OccurrenceState.MISSED,
        }
        for occurrence in page.object_list
    ]
    fires, fires_error = [], ""
    if item.status in (AnnouncementStatus.SCHEDULED, AnnouncementStatus.PAUSED) or (
        item.status in (AnnouncementStatus.DRAFT, AnnouncementStatus.PENDING_APPROVAL)
    ):
        try:
            fires = upcoming_for(item)
        except (ScheduleError, ValueError) as exc:
            fires_error = str(exc)
    events = [
        {
            "event": event,
            "at": in_zone(event.at, zone),
            "who": person_name(event.actor),
            "detail": audit_detail(event.detail or {}, zone),
        }
        for event in item.audit.select_related("actor").order_by("-at", "-id")[:200]
    ]
    own = _is_own(item, user)
    can = {
        "edit": user.has_perm("bulletin.change_announcement") and item.status in lifecycle.EDITABLE,
        "schedule": user.has_perm("bulletin.schedule_announcement"),
        "approve": user.has_perm("bulletin.approve_announcement"),
        "retry": user.has_perm("bulletin.retry_delivery"),
        "test": user.has_perm("bulletin.add_announcement"),
        "export": user.has_perm("bulletin.view_delivery"),
        # A finished one-off whose people still wait for working hours can still be stopped.
        "cancel": item.status != AnnouncementStatus.CANCELLED
        and (item.status != AnnouncementStatus.FINISHED or totals.held > 0),
    }
    return render(
        request,
        "bulletin/hr/detail.html",
        {
            "item": item,
            "zone": zone,
            "schedule": schedule_summary(item),
            "audience": audience_summary(item),
            "audience_count": audience_of(item).count(),
            "channels": [Channel(c).label for c in item.channels if c in Channel.values],
            "places": list(item.places.all()),
            "next_fire": in_zone(item.next_fire_at, zone),
            "created": f"{in_zone(item.created_at, zone)} by {person_name(item.created_by)}",
            "current": current,
            "body_html": markdown_to_html(current.body if current else item.body),
            "versions": [
                {
                    "version": version,
                    "at": in_zone(version.created_at, zone),
                    "who": person_name(version.created_by),
                    "approval": approved_versions.get(version.pk),
                    "approver": _approver(approved_versions.get(version.pk)),
                    "html": markdown_to_html(version.body),
                }
                for version in versions
            ],
            "approvals": [
                {
                    "approval": a,
                    "at": in_zone(a.approved_at, zone),
                    "who": person_name(a.approved_by),
                    "language": translations.other_language(item, a.version),
                }
                for a in approvals
            ],
            "totals": totals,
            "held": holds.held_groups(item) if totals.held else [],
            "occurrences": occurrence_rows,
            "page": page,
            "fires": fires,
            "fires_error": fires_error,
            "waiting": holds.next_send(item) if fires else None,
            "events": events,
            "own": own,
            "can": can,
            "approval_required": options().require_approval,
            "engagement": engagement_views.for_detail(item, zone, occurrence_rows),
            "languages": translations.language_rows(item),
            **translations.coverage_context(item),
        },
    )


def upcoming_for(item: Announcement) -> list[Fire]:
    """The next ten fire times, as the admin shows them (the first recipient zone if per-person)."""
    return [as_fire(fire) for fire in announcements.upcoming(item, 10)]


def _approver(approval: Approval | None) -> str:
    return person_name(approval.approved_by) if approval is not None else ""


def _zone_named(name: str, fallback: ZoneInfo) -> ZoneInfo:
    return zone_or_none(name) or fallback


# --- Actions --------------------------------------------------------------------------------


def _announcement(pk: int) -> Announcement:
    return get_object_or_404(Announcement, pk=pk)


def _back(item: Announcement) -> HttpResponse:
    return redirect("hr:detail", pk=item.pk)


def _report(request: HttpRequest, exc: ValidationError) -> None:
    messages.error(request, " ".join(m[:1].upper() + m[1:] for m in exc.messages))


@hr_view("view_announcement")
@require_POST
def submit(request: HttpRequest, pk: int) -> HttpResponse:
    item = _announcement(pk)
    if item.status != AnnouncementStatus.DRAFT:
        messages.error(request, "Only a draft can be scheduled from here.")
        return _back(item)
    try:
        lifecycle.submit(item, _user(request))
    except ValidationError as exc:
        _report(request, exc)
        return redirect("hr:edit", pk=item.pk)
    messages.success(request, _scheduled_message(item))
    return _back(item)


@hr_view("view_announcement")
@require_POST
def approve(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    item = _announcement(pk)
    try:
        lifecycle.approve(item, user)
    except PermissionDenied as exc:
        if not user.has_perm("bulletin.approve_announcement"):
            raise
        messages.error(
            request,
            f"{str(exc)[:1].upper()}{str(exc)[1:]}. Another approver has to approve it.",
        )
        return _back(item)
    except ValidationError as exc:
        _report(request, exc)
        return _back(item)
    version = announcements.latest_version(item)
    messages.success(
        request,
        f"Approved version {version.number if version else 1}. {_scheduled_message(item)}",
    )
    return _back(item)


@hr_view("view_announcement")
@require_POST
def pause(request: HttpRequest, pk: int) -> HttpResponse:
    item = _announcement(pk)
    try:
        lifecycle.pause(item, _user(request))
    except ValidationError as exc:
        _report(request, exc)
    else:
        messages.success(request, "Paused. Nothing is sent until you resume it.")
    return _back(item)


def _resumed_message(item: Announcement) -> str:
    if item.status == AnnouncementStatus.PENDING_APPROVAL:
        return "Its text changed while paused: it resumes once an approver approves it."
    when = in_zone(item.next_fire_at, display_zone(item))
    text = "Resumed. Times that passed while it was paused are not sent."
    return f"{text} Next send: {when}." if when else text


@hr_view("view_announcement")
@require_POST
def resume(request: HttpRequest, pk: int) -> HttpResponse:
    item = _announcement(pk)
    try:
        lifecycle.resume(item, _user(request))
    except ValidationError as exc:
        _report(request, exc)
    else:
        messages.success(request, _resumed_message(item))
    return _back(item)


@hr_view("view_announcement")
@require_http_methods(["GET", "HEAD", "POST"])
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    item = _announcement(pk)
    user = _user(request)
    if not user.has_perm("bulletin.schedule_announcement"):
        raise PermissionDenied("Your role does not allow you to cancel announcements.")
    if request.method == "POST" and request.POST.get("confirm") == "yes":
        try:
            lifecycle.cancel(item, user)
        except ValidationError as exc:
            _report(request, exc)
        else:
            messages.success(request, "Cancelled. Nothing more will be sent.")
        return _back(item)
    waiting = counts_by_announcement([item.pk]).get(item.pk) or Counts()
    context = {"item": item, "pending": waiting.pending, "held": waiting.held}
    return render(request, "bulletin/hr/confirm_cancel.html", context)


def _occurrence_of(item: Announcement, raw: str | None) -> Occurrence | None:
    # An occurrence that is not this announcement's looks like one that does not exist (404),
    # whether its id is another announcement's, unknown or not a number at all.
    if not raw:
        return None
    if not str(raw).isdigit():
        raise Http404("That occurrence is not part of this announcement.")
    return get_object_or_404(Occurrence, pk=int(raw), announcement=item)


@hr_view("retry_delivery")
@require_POST
def retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Failed deliveries go again at once; unknown ones only after the confirmation page."""
    item = _announcement(pk)
    occurrence = _occurrence_of(item, request.POST.get("occurrence"))
    include_unknown = request.POST.get("include_unknown") == "1"
    if include_unknown and request.POST.get("confirm_duplicates") != "yes":
        url = reverse("hr:retry-unknown", kwargs={"pk": item.pk})
        return redirect(f"{url}?occurrence={occurrence.pk}" if occurrence else url)
    count = lifecycle.retry(
        item, _user(request), occurrence=occurrence, include_unknown=include_unknown
    )
    if count:
        what = "failed or unknown" if include_unknown else "failed"
        messages.success(
            request,
            f"{count} {what} deliver{'y is' if count == 1 else 'ies are'} queued to be sent again.",
        )
    else:
        messages.info(request, "There was nothing to retry.")
    return _back(item)


@hr_view("retry_delivery")
@require_http_methods(["GET", "HEAD"])
def retry_unknown(request: HttpRequest, pk: int) -> HttpResponse:
    item = _announcement(pk)
    occurrence = _occurrence_of(item, request.GET.get("occurrence"))
    rows = Delivery.objects.filter(occurrence__announcement=item)
    if occurrence is not None:
        rows = rows.filter(occurrence=occurrence)
    unknown = rows.filter(state=DeliveryState.UNKNOWN)
    sample = unknown.select_related("employee", "place").order_by("id")[:20]
    return render(
        request,
        "bulletin/hr/confirm_retry.html",
        {
            "item": item,
            "occurrence": occurrence,
            "occurrence_fire": in_zone(occurrence.fire_at, display_zone(item))
            if occurrence
            else "",
            "unknown": unknown.count(),
            "failed": rows.filter(state=DeliveryState.FAILED).count(),
            "sample": sample,
        },
    )


@hr_view("add_announcement")
@require_POST
def send_test(request: HttpRequest, pk: int) -> HttpResponse:
    item = _announcement(pk)
    _send_test(request, item)
    return _back(item)
