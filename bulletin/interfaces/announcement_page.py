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
from django.views.decorators.http import require_safe

from bulletin.channels.base import Recipient
from bulletin.channels.render import render_html
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
    content = occurrence.version or occurrence.announcement
    reader = Recipient(email=employee.email, name=employee.name, timezone=employee.timezone)
    context = {
        "employee": employee,
        "zone": zone_of(employee),
        "title": content.title,
        "sent_at": occurrence.fire_at,
        "body_html": render_html(content.body, reader),
    }
    return render(request, "bulletin/announcement.html", context)
