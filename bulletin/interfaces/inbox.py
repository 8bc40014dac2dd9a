"""What an employee sees: their in-app inbox and their channel preferences.

Every view is scoped to the logged-in user's own Employee: items are looked up with
``employee=`` in the query, so someone else's item is a 404 (a 403 would confirm it exists).
Reads and acknowledgements are conditional UPDATEs (``… WHERE read_at IS NULL``), so the first
timestamp is kept however many tabs or double-clicks race.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, ngettext, pgettext_lazy
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from bulletin.channels.locale_text import speaking
from bulletin.domain import engagement
from bulletin.domain.models import PERSON_CHANNELS, Channel, ChannelOptOut, Employee, InboxItem

log = logging.getLogger(__name__)

PAGE_SIZE = 20
# The person channels an employee may turn off. The in-app inbox is not one of them: it is
# where every announcement is kept, and fan-out never skips it.
OPTIONAL_CHANNELS = tuple(channel for channel in PERSON_CHANNELS if channel != Channel.INAPP)
# The list page needs no bodies.
_LIST_FIELDS = ("id", "title", "created_at", "read_at", "requires_ack", "acknowledged_at")
# The channels by the names employees know them by, in their language.
CHANNEL_NAMES = {
    Channel.EMAIL: pgettext_lazy("channel", "email"),
    Channel.SLACK: pgettext_lazy("channel", "Slack"),
    Channel.TEAMS: pgettext_lazy("channel", "Microsoft Teams"),
    Channel.WEBHOOK: pgettext_lazy("channel", "webhooks"),
    Channel.INAPP: pgettext_lazy("channel", "the in-app inbox"),
}

EmployeeView = Callable[..., HttpResponse]


def employee_view(return_to: str | None = None) -> Callable[[EmployeeView], EmployeeView]:
    """Require a login linked to an Employee, and call the view with that employee.

    Anonymous requests go to the login page. ``return_to`` names the page to come back to
    after logging in when the request itself cannot be replayed as a GET (a POST-only action);
    otherwise it is the requested URL. A login that is not linked to an employee gets a page
    that says so, not an error. The page is in the employee's own language.
    """

    def decorate(view: EmployeeView) -> EmployeeView:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                path = reverse(return_to, kwargs=kwargs) if return_to else request.get_full_path()
                return redirect_to_login(path)
            # Raises RelatedObjectDoesNotExist, an AttributeError, when the user has none.
            employee = getattr(request.user, "employee", None)
            if employee is None:
                return render(request, "bulletin/not_linked.html", status=403)
            with speaking(employee.language):
                return view(request, employee, *args, **kwargs)

        return wrapper

    return decorate


def zone_of(employee: Employee) -> ZoneInfo:
    """The employee's own zone for showing times; UTC if the stored name is unusable."""
    try:
        return ZoneInfo(employee.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@employee_view()
@require_safe
def inbox(request: HttpRequest, employee: Employee) -> HttpResponse:
    items = InboxItem.objects.filter(employee=employee)
    counts = items.aggregate(
        unread=Count("pk", filter=Q(read_at__isnull=True)),
        action_needed=Count("pk", filter=Q(requires_ack=True, acknowledged_at__isnull=True)),
    )
    # Served by the (employee, -created_at) index; -id breaks ties so pages never overlap.
    listing = items.only(*_LIST_FIELDS).order_by("-created_at", "-id")
    page = Paginator(listing, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "bulletin/inbox.html",
        {
            "employee": employee,
            "zone": zone_of(employee),
            "page": page,
            "unread": counts["unread"],
            "action_needed": counts["action_needed"],
        },
    )


@employee_view()
@require_safe
def item_detail(request: HttpRequest, employee: Employee, pk: int) -> HttpResponse:
    item = get_object_or_404(InboxItem.objects.select_related("delivery"), pk=pk, employee=employee)
    if item.read_at is None and request.method == "GET":  # a HEAD probe is not a read
        now = timezone.now()
        # Set once: a second tab opening it at the same moment does not move the time.
        if InboxItem.objects.filter(pk=item.pk, read_at__isnull=True).update(read_at=now):
            item.read_at = now
        else:
            item.refresh_from_db(fields=["read_at"])
        engagement.opened(item.delivery.occurrence_id, employee.pk, now)
    # The language its text was sent in ("": unknown, the browser works out its direction).
    text_language = getattr(item.delivery, "language", "")
    return render(
        request,
        "bulletin/item.html",
        {
            "employee": employee,
            "zone": zone_of(employee),
            "item": item,
            "text_language": text_language,
        },
    )


@employee_view(return_to="inbox:item")
@require_POST
def acknowledge(request: HttpRequest, employee: Employee, pk: int) -> HttpResponse:
    item = get_object_or_404(
        InboxItem.objects.select_related("delivery").only(
            "id", "requires_ack", "delivery__occurrence_id"
        ),
        pk=pk,
        employee=employee,
    )
    if not item.requires_ack:
        return HttpResponseBadRequest(
            gettext("This announcement does not ask for acknowledgement."),
            content_type="text/plain",
        )
    # Recorded once, and shown on this item, whichever channel's button is pressed first.
    engagement.acknowledged(item.delivery.occurrence_id, employee.pk, "inapp", timezone.now())
    return redirect("inbox:item", pk=item.pk)


@employee_view(return_to="inbox:list")
@require_POST
def mark_all_read(request: HttpRequest, employee: Employee) -> HttpResponse:
    """Clears the unread marks; not a reading: HR's "opened" figures do not count it."""
    count = InboxItem.objects.filter(employee=employee, read_at__isnull=True).update(
        read_at=timezone.now()
    )
    if count:
        done = ngettext(
            "Marked %(count)d announcement as read.",
            "Marked %(count)d announcements as read.",
            count,
        )
        messages.success(request, done % {"count": count})
    return redirect("inbox:list")


@employee_view()
@require_http_methods(["GET", "HEAD", "POST"])
def preferences(request: HttpRequest, employee: Employee) -> HttpResponse:
    back = reverse("inbox:preferences")
    if request.method == "POST":
        return save_preferences(request, employee, back)
    return preferences_page(request, employee, action=back)


def preferences_page(request: HttpRequest, employee: Employee, action: str) -> HttpResponse:
    """The form, posting to ``action`` (here, or an email's signed preferences link)."""
    opted_out = set(employee.opt_outs.values_list("channel", flat=True))
    choices = [
        {"value": channel.value, "label": CHANNEL_NAMES[channel], "opted_out": channel in opted_out}
        for channel in OPTIONAL_CHANNELS
    ]
    context = {"employee": employee, "choices": choices, "action": action}
    return render(request, "bulletin/preferences.html", context)


def save_preferences(request: HttpRequest, employee: Employee, back: str) -> HttpResponse:
    """Checked boxes are the channels to opt out of; every other optional channel is opted in.
    Then back to ``back``, the form."""
    wanted = set(request.POST.getlist("opt_out"))
    allowed = {channel.value for channel in OPTIONAL_CHANNELS}
    if unknown := sorted(wanted - allowed):
        names = ", ".join(repr(name) for name in unknown)
        return HttpResponseBadRequest(
            f"Unknown or non-optional channel {names}: you can opt out of "
            f"{', '.join(sorted(allowed))} only; the in-app inbox always receives announcements.",
            content_type="text/plain",
        )
    with transaction.atomic():
        # Lock the employee so two submissions in flight apply one after the other
        # (PostgreSQL; SQLite's IMMEDIATE transactions already serialise writers).
        Employee.objects.select_for_update().only("pk").get(pk=employee.pk)
        current = set(
            ChannelOptOut.objects.filter(employee=employee, channel__in=allowed).values_list(
                "channel", flat=True
            )
        )
        added, removed = sorted(wanted - current), sorted(current - wanted)
        ChannelOptOut.objects.bulk_create(
            [ChannelOptOut(employee=employee, channel=channel) for channel in added]
        )
        ChannelOptOut.objects.filter(employee=employee, channel__in=removed).delete()
    for channel, opted_out in [(c, True) for c in added] + [(c, False) for c in removed]:
        log.info(
            "employee %s opted %s %s",
            employee.pk,
            "out of" if opted_out else "in to",
            channel,
            extra={"employee_id": employee.pk, "channel": channel, "opted_out": opted_out},
        )
    messages.success(request, gettext("Your preferences are saved."))
    return redirect(back)
