"""Who a Slack DM goes to, and where what Slack told us about it is remembered.

``users.lookupByEmail`` and ``conversations.open`` are Tier 3 methods (about 50 calls a minute,
https://docs.slack.dev/apis/web-api/rate-limits): asking both for every person on every
announcement makes a 2,000-person DM announcement cost 40 minutes of look-ups before the first
post, each time. So the member id and the DM channel they return are remembered (dispatch keeps
them on the employee) and the claim brings them back on the ``Recipient``: the next
announcement to the same person is one ``chat.postMessage``.

Each remembered value names what it was found for, so it goes stale by itself:

- a member id found by email is used only while the person's email is the one it was found
  for (an email change means a new look-up);
- a DM channel is used only with the member id it was opened with.

A member id typed in by hand (``Recipient.slack_user_id``) is used as given and never replaced
by a look-up: if Slack refuses it, the delivery fails saying so, and the id stays for a person
to correct or clear (cleared, the person is looked up by email).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bulletin.channels.base import Recipient


@dataclass(frozen=True)
class SlackIdentity:
    """A person's DM: their member id and the channel opened with it.

    ``found_by_email``: the member id came from ``users.lookupByEmail`` (False: typed in by
    hand, and the store must leave it as it is).
    """

    user_id: str
    channel: str
    found_by_email: bool


class SlackIdentities(Protocol):
    """Where the Slack transport keeps what it found. Reading is the claim's job: what was
    remembered comes back on the ``Recipient``."""

    def remember(self, person: Recipient, identity: SlackIdentity) -> None:
        """Keep ``identity`` for ``person`` (found for their email as it is now)."""

    def forget(self, person: Recipient) -> None:
        """Drop what was found for ``person`` (a member id typed in by hand stays)."""


class NoIdentities:
    """Remembers nothing: every send asks Slack (a transport used outside dispatch)."""

    def remember(self, person: Recipient, identity: SlackIdentity) -> None:
        return None

    def forget(self, person: Recipient) -> None:
        return None


def email_of(person: Recipient) -> str:
    return person.email.strip().lower()


def known_user(person: Recipient) -> str:
    """The member id to use without asking Slack, or "": typed in by hand, or found by email
    for the email the person has now."""
    if person.slack_user_id:
        return person.slack_user_id
    if person.slack_found_id and person.slack_found_for == email_of(person):
        return person.slack_found_id
    return ""


def known_channel(person: Recipient) -> str:
    """The DM channel to post to without asking Slack, or "": opened with the member id that
    is the person's now."""
    user_id = known_user(person)
    if user_id and person.slack_dm_channel and person.slack_dm_user == user_id:
        return person.slack_dm_channel
    return ""
