"""The links an email carries for its person, each signed so that no login is needed and
nobody can make one for someone else: "Open in Bulletin" (signs them in), "Manage
preferences", and "Acknowledge".

Signed with SECRET_KEY by Django's ``signing`` (each kind its own salt, so one kind of token is
never accepted as another). Rotating SECRET_KEY without keeping the old one in
SECRET_KEY_FALLBACKS invalidates every link already sent.

Why not django-sesame for the sign-in link: its tokens sign a *user* (primary key and password
hash), and most employees have no user until they first sign in. Making a user for every
person at fan-out, for links most never click, would write 100,000 users for one company-wide
email. The token here names the employee and a digest of their address; at first use the
employee's user is found (by the employee's link, else by email) or made.

- The sign-in link expires (BULLETIN_SIGN_IN_LINK_DAYS, 14 by default): it is a credential
  in a mailbox. It stops working at once if the employee's address changes (a reassigned
  mailbox) or the employee is deactivated, and it never signs in a user who may use HR's
  screens or the admin: those sign in with their password or single sign-on.
- The preferences link does not expire (like RFC 8058's unsubscribe link: a months-old email
  must still let its reader stop email); all it can change is their own channel choices.
- The acknowledge link does not expire either, and leads to a page whose button records it:
  a mail scanner following the link acknowledges nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.core import signing

from bulletin.conf import options, site_link

_SIGN_IN = "bulletin.sign-in"
_PREFERENCES = "bulletin.preferences"
_ACKNOWLEDGE = "bulletin.acknowledge"

# The paths under BULLETIN_SITE_URL; bulletin.urls serves them (a token never holds a "/").
SIGN_IN_PATH = "e/"
PREFERENCES_PATH = "preferences/link/"
ACKNOWLEDGE_PATH = "acknowledge/"


def mailbox_digest(email: str) -> str:
    """A short digest of the address (not the address: links are logged and forwarded)."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:16]


def sign_in_url(employee_id: int, email: str, occurrence_id: int) -> str:
    value = f"{employee_id}.{occurrence_id}.{mailbox_digest(email)}"
    return site_link(f"{SIGN_IN_PATH}{signing.TimestampSigner(salt=_SIGN_IN).sign(value)}/")


def preferences_url(employee_id: int) -> str:
    token = signing.Signer(salt=_PREFERENCES).sign(str(employee_id))
    return site_link(f"{PREFERENCES_PATH}{token}/")


def acknowledge_url(employee_id: int, occurrence_id: int, channel: str) -> str:
    token = signing.Signer(salt=_ACKNOWLEDGE).sign(f"{employee_id}.{occurrence_id}.{channel}")
    return site_link(f"{ACKNOWLEDGE_PATH}{token}/")


@dataclass(frozen=True)
class SignIn:
    employee_id: int
    occurrence_id: int
    mailbox: str  # mailbox_digest of the address it was sent to


@dataclass(frozen=True)
class Acknowledgement:
    employee_id: int
    occurrence_id: int
    channel: str


class LinkRefused(Exception):
    """Not a link Bulletin signed (tampered, truncated, another installation's), or expired."""


def read_sign_in(token: str) -> SignIn:
    max_age = options().sign_in_link_days * 86400
    try:
        value = signing.TimestampSigner(salt=_SIGN_IN).unsign(token, max_age=max_age)
    except signing.SignatureExpired:
        raise LinkRefused("This sign-in link has expired.") from None
    except signing.BadSignature:
        raise LinkRefused("This sign-in link is not valid.") from None
    employee, occurrence, mailbox = _parts(value, 3)
    return SignIn(_number(employee), _number(occurrence), mailbox)


def read_preferences(token: str) -> int:
    try:
        value = signing.Signer(salt=_PREFERENCES).unsign(token)
    except signing.BadSignature:
        raise LinkRefused("This preferences link is not valid.") from None
    return _number(value)


def read_acknowledge(token: str) -> Acknowledgement:
    try:
        value = signing.Signer(salt=_ACKNOWLEDGE).unsign(token)
    except signing.BadSignature:
        raise LinkRefused("This acknowledgement link is not valid.") from None
    employee, occurrence, channel = _parts(value, 3)
    return Acknowledgement(_number(employee), _number(occurrence), channel)


def _parts(value: str, count: int) -> list[str]:
    parts = value.split(".")
    if len(parts) != count:
        raise LinkRefused("This link is not valid.")
    return parts


def _number(text: str) -> int:
    if not text.isdigit():
        raise LinkRefused("This link is not valid.")
    return int(text)
