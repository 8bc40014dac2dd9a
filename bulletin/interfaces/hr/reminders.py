"""HR's "Remind them": a reminder to the people an occurrence reached who have not
acknowledged it, over the channels HR ticks (bulletin.dispatch.reminders).

The form carries a token drawn with the page (``remind_form``): a double click or a resent
form makes one reminder, and says so. Drawing the page again gives a new token, for a second
reminder on purpose.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.http import require_POST

from bulletin.dispatch.audience import not_acknowledged
from bulletin.dispatch.reminders import ReminderRefused, remind
from bulletin.domain.models import PERSON_CHANNELS, Channel, Occurrence
from bulletin.interfaces.hr.access import hr_view


def remind_form(occurrence: Occurrence) -> dict[str, Any]:
    """What ``_remind_form.html`` needs: whom it would reach now, the channels, a fresh token."""
    chosen = set(occurrence.announcement.channels) & {str(c) for c in PERSON_CHANNELS}
    return {
        "occurrence": occurrence,
        "waiting": not_acknowledged(occurrence).count(),
        "channels": [
            {"value": c.value, "label": c.label, "checked": c.value in (chosen or {"inapp"})}
            for c in (Channel.EMAIL, Channel.SLACK, Channel.INAPP)
        ],
        "token": secrets.token_urlsafe(24),
    }


@hr_view("schedule_announcement")
@require_POST
def send_reminder(request: HttpRequest, pk: int) -> HttpResponse:
    """The form's ``occurrence`` (of this announcement), ``channels`` and ``token``."""
    raw = request.POST.get("occurrence", "")
    if not raw.isdigit():
        raise Http404("Name the occurrence to remind of.")
    occurrence = get_object_or_404(
        Occurrence.objects.select_related("announcement", "reminder_of"),
        pk=int(raw),
        announcement_id=pk,
    )
    channels = request.POST.getlist("channels")
    try:
        made = remind(
            occurrence, channels, request.POST.get("token", ""), timezone.now(), request.user
        )
    except ReminderRefused as exc:
        messages.error(request, f"No reminder was sent ({exc.field}): {exc}.")
        return redirect("hr:detail", pk=pk)
    count = made.occurrence.delivery_count or 0
    if made.created:
        messages.success(
            request, f"Reminder queued: {count} deliver{'y' if count == 1 else 'ies'}."
        )
    else:
        messages.info(request, "This reminder was already sent; nothing more was sent.")
    return redirect("hr:detail", pk=pk)
