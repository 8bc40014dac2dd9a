"""Logins and employees, linked without an admin screen.

- At every sign-in (a password, an email's sign-in link, later single sign-on) a user who is
  not yet linked to an employee is linked to the active employee with the same address who
  has no login yet (the address compared case-insensitively; exactly one match, or nothing).
- HR invites a department at once (``invite``): each active person in it gets an email with a
  sign-in link to their inbox. At most one invitation per person a day however often HR
  presses the button, or two HR people at once: each is claimed by a conditional UPDATE of
  ``Employee.invited_at`` before its email is sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db.models import Q
from django.utils.html import escape

from bulletin.conf import options
from bulletin.dispatch.signed_links import sign_in_url
from bulletin.domain.models import AuditEvent, Employee
from bulletin.domain.records import AuditAction

log = logging.getLogger(__name__)

INVITE_AGAIN_AFTER = timedelta(days=1)


def link_at_sign_in(sender: Any, request: Any, user: User, **kwargs: Any) -> None:
    """user_logged_in: link the user to their employee by address, when unambiguous."""
    if not user.email or Employee.objects.filter(user=user).exists():
        return
    match = Employee.objects.filter(email__iexact=user.email, user__isnull=True, active=True)
    found = list(match.values_list("pk", flat=True)[:2])
    if len(found) != 1:
        return
    if Employee.objects.filter(pk=found[0], user__isnull=True).update(user=user):
        log.info("user linked to employee", extra={"employee_id": found[0], "user_id": user.pk})


@dataclass(frozen=True)
class Invited:
    sent: int  # invitations sent now
    skipped: int  # already invited in the last day


def invite(department: str, by: User | None, now: datetime) -> Invited:
    """Email each active person in ``department`` a sign-in link to their inbox."""
    people = Employee.objects.filter(active=True, department=department).order_by("pk")
    cutoff = now - INVITE_AGAIN_AFTER
    sent = skipped = 0
    with get_connection() as connection:
        for person in people.iterator(chunk_size=500):
            if not _claim(person, cutoff, now):
                skipped += 1
                continue
            connection.send_messages([_invitation(person)])
            sent += 1
    detail = {"department": department, "sent": sent, "skipped": skipped}
    AuditEvent.objects.create(action=AuditAction.INVITED, actor=by, detail=detail)
    log.info("department invited", extra=detail)
    return Invited(sent, skipped)


def _claim(person: Employee, cutoff: datetime, now: datetime) -> bool:
    not_lately = Q(invited_at__isnull=True) | Q(invited_at__lt=cutoff)
    return bool(Employee.objects.filter(not_lately, pk=person.pk).update(invited_at=now))


def _invitation(person: Employee) -> EmailMultiAlternatives:
    link = sign_in_url(person.pk, person.email, 0)  # 0: to the inbox, not one announcement
    organisation = options().org_name
    days = options().sign_in_link_days
    text = (
        f"Hello {person.name},\n\n{organisation} sends its announcements through Bulletin. "
        f"Open your inbox (no password needed; the link works for {days} days):\n\n{link}\n"
    )
    html = (
        f"<p>Hello {escape(person.name)},</p><p>{escape(organisation)} sends its announcements "
        f'through Bulletin. <a href="{escape(link)}">Open your inbox</a> (no password needed; '
        f"the link works for {days} days).</p>"
    )
    email = EmailMultiAlternatives(
        subject=f"Your {organisation} announcements inbox",
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[person.email],
    )
    email.attach_alternative(html, "text/html")
    return email
