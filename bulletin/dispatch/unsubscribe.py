"""One-click unsubscribe (RFC 8058): the signed link each optional email carries, and what
following it does.

The link names the person and the announcement they were reading, signed with SECRET_KEY
(django.core.signing, its own salt): no login is needed, and nobody can make a link for
someone else. It never expires, on purpose: an unsubscribe link in a months-old email must
still work, and all it can do is stop optional email, which the person can undo in their
preferences. Rotating SECRET_KEY without keeping the old one in SECRET_KEY_FALLBACKS
invalidates every link already sent.

Unsubscribing opts the person out of email (a ChannelOptOut, honoured by fan-out for every
announcement that is not mandatory), at once, audited once; repeating it changes nothing.
"""

from __future__ import annotations

import logging

from django.core import signing
from django.db import transaction

from bulletin.conf import site_link
from bulletin.domain.models import Announcement, AuditEvent, Channel, ChannelOptOut
from bulletin.domain.records import AuditAction

log = logging.getLogger(__name__)

_SALT = "bulletin.unsubscribe"
# The path under BULLETIN_SITE_URL; bulletin.urls serves it (the token never holds a "/").
PATH = "unsubscribe/"


def unsubscribe_url(employee_id: int, announcement_id: int) -> str:
    """The absolute one-click link for this person, from this announcement's email."""
    token = signing.Signer(salt=_SALT).sign(f"{employee_id}.{announcement_id}")
    return site_link(f"{PATH}{token}/")


def read_token(token: str) -> tuple[int, int] | None:
    """(employee id, announcement id) from a link's token; None when it is not one Bulletin
    signed (tampered, truncated, another installation's, or garbage)."""
    try:
        value = signing.Signer(salt=_SALT).unsign(token)
    except signing.BadSignature:
        return None
    employee, _, announcement = value.partition(".")
    if not (employee.isdigit() and announcement.isdigit()):
        return None
    return int(employee), int(announcement)


def is_opted_out(employee_id: int) -> bool:
    return ChannelOptOut.objects.filter(employee_id=employee_id, channel=Channel.EMAIL).exists()


def unsubscribe(employee_id: int, announcement_id: int) -> bool:
    """Opt the person out of optional email; True when this did it, False when they already
    were (nothing changes, nothing more is audited)."""
    with transaction.atomic():
        _, created = ChannelOptOut.objects.get_or_create(
            employee_id=employee_id, channel=Channel.EMAIL
        )
        if created:
            announcement = Announcement.objects.filter(pk=announcement_id).first()
            detail = {"employee_id": employee_id, "channel": Channel.EMAIL, "via": "one-click"}
            AuditEvent.objects.create(
                action=AuditAction.UNSUBSCRIBED, announcement=announcement, detail=detail
            )
    if created:
        log.info(
            "employee %s unsubscribed from email (one-click, announcement %s)",
            employee_id,
            announcement_id,
            extra={"employee_id": employee_id, "announcement_id": announcement_id},
        )
    return created
