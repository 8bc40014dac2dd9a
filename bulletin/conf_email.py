"""The announcement email's settings, checked while settings load (``bulletin.conf.Options``).

Each function takes the variable's raw value and returns it in one canonical form, or raises
one ``ImproperlyConfigured`` naming the variable. The org name and the senders end up in
headers and HTML alike, so anything that could break a line (CR, LF, other control
characters) is refused here rather than escaped later.
"""

from __future__ import annotations

import re
from email.utils import getaddresses
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
# RFC 5322 specials: a display name holding one must be quoted.
_SPECIALS = set('()<>[]:;@\\,."')
ORG_NAME_LIMIT = 100
FOOTER_LIMIT = 2000


def org_name(raw: str) -> str:
    name = raw.strip()
    if not name or _CONTROL.search(name) or len(name) > ORG_NAME_LIMIT:
        raise ImproperlyConfigured(
            f"BULLETIN_ORG_NAME must be one line of 1 to {ORG_NAME_LIMIT} characters, got {raw!r}"
        )
    return name


def logo_url(raw: str) -> str:
    url = raw.strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or re.search(r"[\s\"'<>\\]", url)
    ):
        raise ImproperlyConfigured(
            f"BULLETIN_LOGO_URL must be an absolute http:// or https:// URL, got {raw!r}"
        )
    return url


def brand_color(raw: str) -> str:
    color = raw.strip()
    if not _COLOR.fullmatch(color):
        raise ImproperlyConfigured(
            f"BULLETIN_BRAND_COLOR must be a colour written #rrggbb (e.g. #1f4e8c), got {raw!r}"
        )
    return color.lower()


def email_footer(raw: str) -> str:
    """Plain text; lines kept (CRLF or CR read as LF), other control characters refused."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n").strip()
    if _CONTROL.search(text.replace("\n", "")) or len(text) > FOOTER_LIMIT:
        raise ImproperlyConfigured(
            f"BULLETIN_EMAIL_FOOTER must be plain text of at most {FOOTER_LIMIT} characters "
            f"(line breaks allowed), got {raw[:80]!r}"
        )
    return text


def senders(raw: str) -> str:
    """Each address checked, kept one a line as ``Name <addr>`` (the name quoted when it holds
    a special character) or ``addr``."""
    if not raw.strip():
        return ""
    entries = [entry.strip() for entry in re.split(r"[\r\n]+", raw) if entry.strip()]
    kept = []
    for entry in entries:
        if _CONTROL.search(entry):
            raise ImproperlyConfigured(f"BULLETIN_SENDERS: {entry!r} has a control character")
        kept += [_mailbox(entry, name, address) for name, address in _addresses(entry)]
    return "\n".join(dict.fromkeys(kept))


def _addresses(entry: str) -> list[tuple[str, str]]:
    """The comma-separated addresses on one line (a quoted name may hold a comma)."""
    found = getaddresses([entry])
    if not found or ("", "") in found:
        raise ImproperlyConfigured(
            f"BULLETIN_SENDERS: cannot read {entry!r} as addresses such as "
            "'People Team <people@example.com>'"
        )
    return found


def _mailbox(entry: str, name: str, address: str) -> str:
    try:
        validate_email(address)
    except ValidationError:
        raise ImproperlyConfigured(
            f"BULLETIN_SENDERS: {address!r} (in {entry!r}) is not an email address"
        ) from None
    if not name:
        return address
    if _SPECIALS & set(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}>"


class SenderNotAllowed(ValueError):
    """An announcement's sender that BULLETIN_SENDERS does not list."""


def allowed_sender(sender: str, listed: tuple[str, ...]) -> str:
    """The entry of BULLETIN_SENDERS (``listed``) with ``sender``'s address, as configured:
    a name changed in the settings since the announcement chose it is the one sent.

    Raises SenderNotAllowed naming the sender when none has its address."""
    wanted = _address_of(sender)
    for entry in listed:
        if wanted and _address_of(entry) == wanted:
            return entry
    shown = ", ".join(listed) or "none configured"
    raise SenderNotAllowed(f"the sender {sender!r} is not one of BULLETIN_SENDERS ({shown})")


def _address_of(mailbox: str) -> str:
    found = getaddresses([mailbox])
    return found[0][1].lower() if len(found) == 1 else ""
