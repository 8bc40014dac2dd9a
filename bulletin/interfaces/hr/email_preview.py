"""``/hr/<pk>/email-preview/``: the announcement's email exactly as it will be sent.

The page is the HTML part of the very bytes the SMTP path writes (``EmailTransport``'s
envelope, then read back as a mail client reads it), for a sample reader: the HR user's own
employee, else a placeholder person. Its links point where the real ones lead, without
anyone's signed token: a preview must not mint sign-in links.

The detail page shows it in an ``<iframe>`` at phone and desktop widths. The email brings its
own inline styles, which the site's Content-Security-Policy refuses, so this one response
gets a policy of its own: styles and https images only, no script, framed by this site only,
sandboxed.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from typing import Any

from csp.decorators import csp
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.html import escape
from django.views.decorators.http import require_safe

from bulletin.channels.base import Footer, Message, PermanentError, Recipient
from bulletin.channels.email import EmailTransport
from bulletin.channels.render import render_html, render_text
from bulletin.conf import site_link
from bulletin.dispatch.announcements import latest_version
from bulletin.dispatch.compose import audience_in_words
from bulletin.domain.models import Announcement
from bulletin.interfaces.hr.access import hr_view
from bulletin.interfaces.hr.present import person_name

PLACEHOLDER = Recipient(email="someone@example.com", name="Sam Example", timezone="UTC")
# Only what the email itself needs; "sandbox" also stops forms and navigation of the page.
POLICY = {
    "default-src": ["'none'"],
    "style-src": ["'unsafe-inline'"],
    "img-src": ["https:", "http:", "data:"],
    "frame-ancestors": ["'self'"],
    "sandbox": [""],
}


def sample_reader(user: Any) -> Recipient:
    """The person the preview is personalised for: the HR user's employee, if they are one."""
    employee = getattr(user, "employee", None)
    if employee is not None and employee.email:
        return Recipient(email=employee.email, name=employee.name, timezone=employee.timezone)
    if user.email:
        return Recipient(email=user.email, name=person_name(user), timezone="UTC")
    return PLACEHOLDER


def sample_message(item: Announcement, reader: Recipient) -> Message:
    """The message an email delivery of ``item`` makes, with links that carry no token."""
    content = latest_version(item) or item
    inbox, preferences = site_link(reverse("inbox:list")), site_link(reverse("inbox:preferences"))
    return Message(
        idempotency_key=f"preview-{item.pk}",
        title=content.title,
        text=render_text(content.body, reader),
        html=render_html(content.body, reader),
        body=content.body,
        recipient=reader,
        announcement_id=item.pk,
        requires_ack=item.requires_ack,
        mandatory=item.mandatory,
        unsubscribe_url="" if item.mandatory else preferences,
        sender=item.sender,
        footer=Footer(
            reason=audience_in_words(item),
            open_url=inbox,
            preferences_url=preferences,
            acknowledge_url=inbox if item.requires_ack else "",
        ),
    )


def html_as_sent(message: Message) -> str:
    """The HTML part of the bytes the SMTP path writes for ``message``, as a client reads it."""
    data = EmailTransport()._envelope(message).data
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    part = parsed.get_body(("html",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


@hr_view("view_announcement")
@require_safe
@csp(POLICY)  # type: ignore[arg-type]  # django-csp types views as (request) only
def email_preview(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(Announcement, pk=pk)
    try:
        page = html_as_sent(sample_message(item, sample_reader(request.user)))
    except PermanentError as exc:
        problem = f"<!DOCTYPE html><p>This email cannot be sent as it is: {escape(exc)}</p>"
        response = HttpResponse(problem, status=409)
    else:
        response = HttpResponse(page, content_type="text/html; charset=utf-8")
    # The HR detail page frames it; Django's middleware keeps a header that is already set.
    response["X-Frame-Options"] = "SAMEORIGIN"
    return response
