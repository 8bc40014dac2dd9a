"""Where the Slack transport's look-ups are remembered: on the employee they were made for.

Written by email (unique, and what ``users.lookupByEmail`` was asked about): if the person's
email changed meanwhile, the write finds no one, and the next send looks them up afresh. The
claim reads these columns back onto the ``Recipient`` (``dispatch.ledger``). Writes use
``update()``: a remembered id is a cache, not an edit, so ``updated_at`` stays as it was.
"""

from __future__ import annotations

import logging

from bulletin.channels import transport_for
from bulletin.channels.base import Recipient, Transport
from bulletin.channels.slack import SlackTransport
from bulletin.channels.slack_identity import SlackIdentity, email_of
from bulletin.domain.models import Channel, Employee

log = logging.getLogger(__name__)


class EmployeeSlackIdentities:
    """``SlackIdentities`` kept on ``Employee`` rows."""

    def remember(self, person: Recipient, identity: SlackIdentity) -> None:
        email = email_of(person)
        if not email:  # nobody to find it again by; the transport still has it for the drain
            return
        changes = {"slack_dm_channel": identity.channel, "slack_dm_user": identity.user_id}
        if identity.found_by_email:  # a member id typed in by hand is left as it is
            changes |= {"slack_found_id": identity.user_id, "slack_found_for": email}
        Employee.objects.filter(email=email).update(**changes)

    def forget(self, person: Recipient) -> None:
        if not email_of(person):
            return
        cleared = dict.fromkeys(
            ("slack_found_id", "slack_found_for", "slack_dm_channel", "slack_dm_user"), ""
        )
        Employee.objects.filter(email=email_of(person)).update(**cleared)


def transport(channel: str) -> Transport:
    """A new transport for ``channel``, with what it needs from dispatch (Slack: a store for
    the identities it finds)."""
    if channel == Channel.SLACK:
        return SlackTransport(identities=EmployeeSlackIdentities())
    return transport_for(channel)()
