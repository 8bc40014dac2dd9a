"""VERP: a return path per delivery, so a bounce names the delivery it is about.

With ``BULLETIN_BOUNCE_ADDRESS=bounces@example.com`` the email for delivery 4711 goes with the
envelope sender (SMTP ``MAIL FROM``) ``bounces+4711-k2v7qmxa3hfe@example.com``. A bounce is sent
to the envelope sender (RFC 5321 section 4.5.5; RFC 3464 section 2.2), so it comes back to that
address and the key after the ``+`` says which delivery failed, whatever the bounce's body says.
The MTA takes everything after ``+`` as an extension (Postfix: ``recipient_delimiter = +``; Exim:
``local_part_suffix = +*``) and delivers it to ``bounces``.

The key is the delivery id, a hyphen and a truncated HMAC of the id: a forged bounce cannot
name someone else's delivery without Django's SECRET_KEY. It holds only digits, lower-case
letters and one hyphen (legal in a dot-atom local part, RFC 5321 section 4.1.2) and is read
case-insensitively: some MTAs lower-case the local part.

No time goes into the key: a bounce may legitimately arrive days after the send (Postfix keeps
a message queued for 5 days, ``maximal_queue_lifetime``), and a replayed genuine bounce can only
repeat what its delivery's own bounce said, which ``bulletin.dispatch.bounces.record`` records
once (idempotent: a second copy is a ``duplicate``, a bounced delivery stays bounced).
"""

from __future__ import annotations

import base64
import re

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

from bulletin.channels.mime import envelope_address
from bulletin.conf import options

# A salt of its own: no other HMAC Bulletin makes (signed links, sessions) can pass for a key.
_SALT = "bulletin.channels.verp.return-path"
# 12 base32 characters: 60 bits. A guess costs the forger a whole email, so 2**60 is plenty.
_MAC_LENGTH = 12
_KEY = re.compile(rf"([1-9][0-9]{{0,19}})-([a-z2-7]{{{_MAC_LENGTH}}})")
# "+", the longest id (20 digits), "-" and the MAC: with the bounce address's local part
# (bulletin.conf.BOUNCE_LOCAL_PART_LONGEST) at most RFC 5321's 64 octets (4.5.3.1.1).
KEY_LONGEST = 1 + 20 + 1 + _MAC_LENGTH


class KeyRefused(ValueError):
    """The address carries no key Bulletin made; the message says why."""


class NoKey(KeyRefused):
    """The address carries no key at all (the bounce address itself, or another address):
    nothing was forged, there is simply nothing to read."""


def _mac(delivery_id: int, secret: str) -> str:
    digest = salted_hmac(_SALT, str(delivery_id), secret=secret, algorithm="sha256").digest()
    return base64.b32encode(digest).decode("ascii").lower()[:_MAC_LENGTH]


def key_for(delivery_id: int) -> str:
    """The key naming ``delivery_id``: ``<id>-<mac>``."""
    if delivery_id <= 0:
        raise ValueError(f"a delivery id is positive, got {delivery_id}")
    return f"{delivery_id}-{_mac(delivery_id, settings.SECRET_KEY)}"


def return_path(delivery_id: int | None) -> str:
    """The envelope sender for a delivery's email: ``local+key@domain`` of
    BULLETIN_BOUNCE_ADDRESS; the bounce address alone for a message without a delivery (a test
    send); "" when no bounce address is configured (the sender's own address is used)."""
    bounce_address = options().bounce_address
    if not bounce_address:
        return ""
    if not delivery_id:
        return envelope_address(bounce_address)
    local, _, domain = bounce_address.rpartition("@")
    return envelope_address(f"{local}+{key_for(delivery_id)}@{domain}")


def _secrets() -> list[str]:
    """SECRET_KEY, then its fallbacks: a bounce for a message sent before a key rotation is
    still read."""
    return [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]


def delivery_of(address: str) -> int:
    """The delivery id a VERP address names; KeyRefused (with the reason) when it carries no
    key, a malformed one, or one whose signature does not match. Whether the delivery exists
    is the recorder's question, not this one."""
    local = address.strip().strip("<>").rpartition("@")[0].strip('"').lower()
    bounce_local = options().bounce_address.rpartition("@")[0].lower()
    if "+" not in local or local == bounce_local:
        raise NoKey(f"no VERP key in {address!r}")
    key = local.rpartition("+")[2]
    matched = _KEY.fullmatch(key)
    if matched is None:
        raise KeyRefused(f"malformed VERP key {key!r}")
    delivery_id, mac = int(matched[1]), matched[2]
    if not any(constant_time_compare(mac, _mac(delivery_id, secret)) for secret in _secrets()):
        raise KeyRefused(f"VERP key {key!r} has a signature Bulletin did not make")
    return delivery_id
