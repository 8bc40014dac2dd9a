"""The pages an email's signed links open, no password needed (the links and their rules:
``bulletin.dispatch.signed_links``).

- ``/e/<token>/``: signs the employee in and shows them the announcement. Their user is
  found or made here, linked to the employee, so giving employees a login takes no admin
  screen. A user who may use HR's screens or the admin is never signed in by a link: they
  are sent to the login page.
- ``/preferences/link/<token>/``: their channel choices, as in the inbox.
- ``/acknowledge/<token>/``: a page whose button records the acknowledgement, once,
  whichever channel's button is pressed first.
"""

from __future__ import annotations

import logging

from django.contrib.auth import login
from django.contrib.auth.models import User
from django.contrib.auth.views import redirect_to_login
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop
from django.views.decorators.http import require_http_methods, require_safe

from bulletin.channels.locale_text import speaking
from bulletin.dispatch import translations
from bulletin.dispatch.signed_links import (
    LinkRefused,
    mailbox_digest,
    read_acknowledge,
    read_preferences,
    read_sign_in,
)
from bulletin.domain import engagement
from bulletin.domain.models import Employee, Occurrence
from bulletin.interfaces import inbox

log = logging.getLogger(__name__)

# What bulletin.dispatch.signed_links says when it refuses a link (logged in English), marked
# here for the catalogs: the page says it in the reader's language.
_REFUSALS = (
    gettext_noop("This sign-in link has expired."),
    gettext_noop("This sign-in link is not valid."),
    gettext_noop("This preferences link is not valid."),
    gettext_noop("This acknowledgement link is not valid."),
    gettext_noop("This link is not valid."),
)


def _refused(request: HttpRequest, problem: str) -> HttpResponse:
    """Nothing changed. Whose link it was is not known (or not trusted): the page is in the
    language the browser asks for, among those Bulletin speaks."""
    log.warning("signed link refused: %s", problem, extra={"path": request.path})
    with translation.override(translation.get_language_from_request(request)):
        context = {"problem": gettext(problem)}
        return render(request, "bulletin/link_refused.html", context, status=400)


@require_safe
def sign_in(request: HttpRequest, token: str) -> HttpResponse:
    try:
        link = read_sign_in(token)
    except LinkRefused as exc:
        return _refused(request, str(exc))
    employee = Employee.objects.filter(pk=link.employee_id, active=True).first()
    if employee is None or mailbox_digest(employee.email) != link.mailbox:
        return _refused(request, gettext_noop("This sign-in link no longer works."))
    # Occurrence 0: an invitation, to the inbox itself.
    target = (
        reverse("inbox:announcement", kwargs={"pk": link.occurrence_id})
        if link.occurrence_id
        else reverse("inbox:list")
    )
    user = _user_for(employee)
    if user is None:
        return redirect_to_login(target)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    extra = {"employee_id": employee.pk, "user_id": user.pk, "occurrence_id": link.occurrence_id}
    log.info("employee signed in by link", extra=extra)
    return redirect(target)


def _user_for(employee: Employee) -> User | None:
    """The employee's user: their own, else one with their address that no other employee
    has, else a new one (no password: links, or single sign-on, sign it in). None for staff."""
    user = employee.user or _unlinked_user(employee.email) or _new_user(employee)
    if user is None:
        return None
    # Any permission at all is more than an employee's (roles.EMPLOYEE has none).
    if user.is_staff or user.is_superuser or not user.is_active or user.get_all_permissions():
        return None
    if employee.user_id != user.pk:
        Employee.objects.filter(pk=employee.pk, user__isnull=True).update(user=user)
        log.info("user linked to employee", extra={"employee_id": employee.pk, "user_id": user.pk})
    return user


def _unlinked_user(email: str) -> User | None:
    users = User.objects.filter(email__iexact=email, employee__isnull=True)
    return users.order_by("pk").first()


def _new_user(employee: Employee) -> User | None:
    """A user named by the address; if that name is taken, the user it names only when it is
    nobody else's (a racing first click made it), else None: the login page, not a 500."""
    name = employee.email.lower()
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=name, email=employee.email)
    except IntegrityError:
        taken = User.objects.filter(username=name).first()
        theirs = Employee.objects.filter(user=taken).exclude(pk=employee.pk).exists()
        return None if taken is None or theirs else taken
    log.info("user made for employee sign-in", extra={"user_id": user.pk})
    return user


@require_http_methods(["GET", "HEAD", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    try:
        employee_id = read_preferences(token)
    except LinkRefused as exc:
        return _refused(request, str(exc))
    employee = Employee.objects.filter(pk=employee_id).first()
    if employee is None:
        return _refused(request, gettext_noop("This preferences link no longer works."))
    with speaking(employee.language):
        if request.method == "POST":
            return inbox.save_preferences(request, employee, back=request.path)
        return inbox.preferences_page(request, employee, action=request.path)


@require_http_methods(["GET", "HEAD", "POST"])
def acknowledge(request: HttpRequest, token: str) -> HttpResponse:
    try:
        link = read_acknowledge(token)
    except LinkRefused as exc:
        return _refused(request, str(exc))
    occurrence = (
        Occurrence.objects.select_related("announcement", "version")
        .filter(pk=link.occurrence_id, deliveries__employee_id=link.employee_id)
        .first()
    )
    if occurrence is None or not occurrence.announcement.requires_ack:
        return _refused(request, gettext_noop("This acknowledgement link no longer works."))
    if request.method == "POST":
        now = timezone.now()
        engagement.acknowledged(occurrence.pk, link.employee_id, link.channel, now)
        return redirect(request.path)
    content = translations.sent_text(occurrence, link.employee_id)  # in their language
    done = engagement.acknowledged_at(occurrence.pk, link.employee_id)
    context = {"title": content.title, "sent_at": occurrence.fire_at, "done": done}
    # In their language and on their clock; the title in its own language's direction.
    employee = Employee.objects.filter(pk=link.employee_id).first() or Employee(timezone="UTC")
    context |= {"zone": inbox.zone_of(employee), "text_language": _language_of(content)}
    with speaking(employee.language):
        return render(request, "bulletin/acknowledge.html", context)


def _language_of(content: object) -> str:
    """The language an announcement's text (or one version of it) is written in."""
    return str(getattr(content, "language", "") or "")
