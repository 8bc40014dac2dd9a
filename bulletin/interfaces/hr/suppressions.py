"""HR's Suppressions screen: the addresses Bulletin no longer emails, each with the bounce that
caused it, a way to lift one, and the returned messages nobody could read.

Seeing it needs ``view_employee`` (it shows people's addresses); lifting needs
``change_employee`` too. A returned message is shown only as a ``text/plain`` download: it is
whatever a stranger's server sent, so a browser must never render it as a page.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import urlencode
from django.views.decorators.http import require_POST, require_safe

from bulletin.dispatch import bounces
from bulletin.domain.bounces import Bounce, Suppression
from bulletin.interfaces.hr.access import hr_view

PER_PAGE = 50
UNREADABLE_SHOWN = 20


@hr_view("view_employee")
@require_safe
def suppression_list(request: HttpRequest) -> HttpResponse:
    address = request.GET.get("address", "").strip().lower()[:254]
    active = _active(address)
    page = Paginator(active, PER_PAGE).get_page(request.GET.get("page"))
    unreadable = Bounce.objects.filter(kind="unreadable").defer("raw")
    user: Any = request.user
    context = {
        "address": address,
        "page": page,
        "suppressions": page.object_list,
        "query": urlencode({"address": address}) + "&" if address else "",
        "unreadable": unreadable[:UNREADABLE_SHOWN],
        "unreadable_count": unreadable.count(),
        "can_lift": user.has_perm("bulletin.change_employee"),
    }
    return render(request, "bulletin/hr/suppressions.html", context)


def _active(address: str) -> QuerySet[Suppression]:
    found = Suppression.objects.filter(lifted_at__isnull=True)
    if address:
        found = found.filter(address__contains=address)
    return (
        found.select_related("employee", "bounce")
        .defer("bounce__raw")
        .order_by("-created_at", "-id")
    )


@hr_view("view_employee", "change_employee")
@require_POST
def lift(request: HttpRequest, pk: int) -> HttpResponse:
    suppression = get_object_or_404(Suppression, pk=pk)
    if bounces.lift(suppression.pk, request.user):
        messages.success(request, f"Email goes to {suppression.address} again from the next send.")
    else:
        messages.info(request, f"{suppression.address} was no longer suppressed.")
    return redirect("hr:suppressions")


@hr_view("view_employee")
@require_safe
def raw_bounce(request: HttpRequest, pk: int) -> HttpResponse:
    bounce = get_object_or_404(Bounce, pk=pk)
    response = HttpResponse(bytes(bounce.raw), content_type="text/plain")
    response["Content-Disposition"] = f'attachment; filename="bounce-{bounce.pk}.txt"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
