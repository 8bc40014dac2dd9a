"""HR invites a department to their inboxes at once (``bulletin.interfaces.accounts.invite``):
no admin screen, no password to hand out."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.models import User
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from bulletin.domain.models import Employee
from bulletin.interfaces.accounts import invite
from bulletin.interfaces.hr.access import hr_view


def _departments() -> list[dict[str, object]]:
    """Each department of active people: how many, and how many have no login yet."""
    rows = (
        Employee.objects.filter(active=True)
        .exclude(department="")
        .values("department")
        .annotate(people=Count("pk"), unlinked=Count("pk", filter=Q(user__isnull=True)))
        .order_by("department")
    )
    return list(rows)


@hr_view("schedule_announcement")
@require_http_methods(["GET", "HEAD", "POST"])
def invite_department(request: HttpRequest) -> HttpResponse:
    departments = _departments()
    if request.method == "POST":
        chosen = request.POST.get("department", "")
        if chosen not in {row["department"] for row in departments}:
            messages.error(request, f"department: no active employee is in {chosen!r}.")
            return redirect("hr:invite")
        by = request.user if isinstance(request.user, User) else None  # hr_view: signed in
        done = invite(chosen, by, timezone.now())
        again = f"; {done.skipped} invited in the last day were not emailed again" * bool(
            done.skipped
        )
        messages.success(request, f"Invited {done.sent} in {chosen}{again}.")
        return redirect("hr:invite")
    return render(request, "bulletin/hr/invite.html", {"departments": departments})
