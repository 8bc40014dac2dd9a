"""An occurrence's own page: where Slack and Teams messages cut to fit link to the whole text.

``/announcements/<occurrence id>/`` needs a login linked to an employee. Whoever had it in
their inbox is sent to that inbox item (so opening it counts as reading it, and an
acknowledgement can be given there); otherwise the text is shown, personalised for the reader,
to anyone it reached: a place (a Slack or Teams channel) means everyone in that channel, so any
employee; a direct message means that person. HR staff may open any. Everyone else gets a 404:
a 403 would confirm the announcement exists.
"""

from __future__ import annotations

from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from bulletin.channels.base import Recipient
from bulletin.channels.render import render_html
from bulletin.dispatch import translations
from bulletin.domain import engagement
from bulletin.domain.models import Delivery, Employee, InboxItem, Occurrence
from bulletin.interfaces.inbox import employee_view, zone_of


def _reached(occurrence: Occurrence, employee: Employee) -> bool:
    """Whether the occurrence went to a place, or to this person over any channel."""
    deliveries = Delivery.objects.filter(occurrence=occurrence)
    return deliveries.filter(Q(employee__isnull=True) | Q(employee=employee)).exists()


@employee_view()
@require_safe
def announcement_page(request: HttpRequest, employee: Employee, pk: int) -> HttpResponse:
    occurrence = get_object_or_404(
        Occurrence.objects.select_related("announcement", "version"), pk=pk
    )
    item = InboxItem.objects.filter(delivery__occurrence=occurrence, employee=employee).first()
    if item is not None:
        return redirect("inbox:item", pk=item.pk)
    staff = request.user.has_perm("bulletin.view_announcement")
    if not staff and not _reached(occurrence, employee):
        raise Http404("No such announcement.")
    content = translations.sent_text(occurrence, employee.pk)  # in their language
    reader = Recipient(email=employee.email, name=employee.name, timezone=employee.timezone)
    reached = _reached_in_person(occurrence, employee)
    if reached and request.method == "GET":  # HR looking, or a HEAD probe, is not a reading
        engagement.opened(occurrence.pk, employee.pk, timezone.now())
    context = {
        "employee": employee,
        "zone": zone_of(employee),
        "title": content.title,
        "sent_at": occurrence.fire_at,
        "body_html": render_html(content.body, reader),
        "occurrence_id": occurrence.pk,
        "requires_ack": reached and occurrence.announcement.requires_ack,
        "acknowledged_at": engagement.acknowledged_at(occurrence.pk, employee.pk),
    }
    return render(request, "bulletin/announcement.html", context)


def _reached_in_person(occurrence: Occurrence, employee: Employee) -> bool:
    """Whether it went to this person themselves (whose reading HR's figures count)."""
    return Delivery.objects.filter(occurrence=occurrence, employee=employee).exists()


@employee_view(return_to="inbox:announcement")
@require_POST
def acknowledge(request: HttpRequest, employee: Employee, pk: int) -> HttpResponse:
    """The page's button (reached by "Open in Bulletin" when there is no inbox item)."""
    occurrence = get_object_or_404(Occurrence.objects.select_related("announcement"), pk=pk)
    if not occurrence.announcement.requires_ack or not _reached_in_person(occurrence, employee):
        raise Http404("No such announcement to acknowledge.")
    engagement.acknowledged(occurrence.pk, employee.pk, "web", timezone.now())
    return redirect("inbox:announcement", pk=pk)
