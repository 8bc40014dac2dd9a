"""An announcement email's bytes, written directly: multipart/alternative, text and HTML.

Django's mail classes build a general MIME tree, then fold every header through the email
package's policies: over a millisecond of CPU per message, which caps one process at a few
hundred emails a second. Every Bulletin email has one shape — a sender, one recipient, a
subject, a Message-ID, a text part and an HTML part — so its bytes are written here directly.
Subjects and names are encoded and folded by :mod:`bulletin.channels.headers` (RFC 2047
encoded-words of at most 75 characters, lines of at most 78, CRLF: a bare LF is refused by
careful servers).

Every email says what it is (:func:`list_headers`): ``Auto-Submitted: auto-generated`` (RFC 3834
section 5: automatic responders, out-of-office replies included, must not answer it), a
``List-Id`` (RFC 2919) and, for an optional announcement, RFC 8058 one-click unsubscribe.
"""

from __future__ import annotations

import base64
import secrets
import time
from datetime import UTC, datetime
from email.utils import format_datetime, parseaddr
from functools import lru_cache

from bulletin.channels.headers import mailbox, unstructured

_CRLF = "\r\n"
# RFC 5322 allows 998 characters a line; a body line longer than this is sent as base64.
_LONGEST_PLAIN_LINE = 990


def _single_line(what: str, value: str) -> str:
    if any(character in value for character in "\r\n\0"):
        raise ValueError(f"the {what} must be a single line (header injection?)")
    return value


@lru_cache(maxsize=64)
def subject_header(subject: str) -> str:
    """The whole ``Subject:`` header, folded at 78 columns; RFC 2047 encoded-words only when
    it is not plain ASCII."""
    return unstructured("Subject", _single_line("subject", subject))


def _sender(address: str) -> tuple[str, str]:
    name, email = parseaddr(_single_line("sender", address))
    if not email:
        raise ValueError(f"the sender {address!r} is not an address")
    return name, email


@lru_cache(maxsize=16)
def sender_address(address: str) -> str:
    """``DEFAULT_FROM_EMAIL`` ("Name <addr>" or "addr") as a From header value."""
    return recipient_address(*_sender(address))


@lru_cache(maxsize=16)
def sender_envelope(address: str) -> str:
    """``DEFAULT_FROM_EMAIL``'s address alone, for the envelope's MAIL FROM."""
    return envelope_address(_sender(address)[1])


def envelope_address(email: str) -> str:
    """The address as the SMTP envelope and headers carry it: a non-ASCII domain in IDNA; a
    non-ASCII local part is refused (it would need SMTPUTF8)."""
    local, _, domain = _single_line("address", email).rpartition("@")
    if not local.isascii():
        raise ValueError(f"{email!r} has a non-ASCII local part")
    if not domain.isascii():
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    return email


def recipient_address(name: str, email: str) -> str:
    """``Name <addr>``: a name with specials quoted, a non-ASCII one as RFC 2047 encoded-words
    folded with CRLF, the address as :func:`envelope_address` writes it."""
    return mailbox(_single_line("name", name), envelope_address(email))


def date_now() -> str:
    """Now, as RFC 5322 writes it with a numeric zone (``+0000``; ``GMT`` is obsolete syntax,
    section 4.3): made once a second, not once a message."""
    return _date_at(int(time.time()))


@lru_cache(maxsize=2)
def _date_at(second: int) -> str:
    return format_datetime(datetime.fromtimestamp(second, UTC))


# RFC 8058 section 3.1: the one key/value pair a one-click List-Unsubscribe-Post carries.
ONE_CLICK = "List-Unsubscribe=One-Click"


def list_headers(list_id: str, unsubscribe_url: str) -> list[tuple[str, str]]:
    """The headers that say what this email is, for both ways of sending it (these bytes, and
    Django's message for the console and file backends).

    ``unsubscribe_url`` ("" for a mandatory announcement: no unsubscribe) becomes RFC 8058's
    pair: ``List-Unsubscribe`` with that one HTTPS URI (RFC 2369 section 2: in angle brackets,
    never white space inside them, so a long URI is a long line: 998 is the MUST) and
    ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``. Mailbox providers then POST that
    body to the URI, without cookies or credentials, and expect no redirect (section 3.2); they
    offer the button only when a DKIM signature covers both headers (section 4).
    """
    headers = [("Auto-Submitted", "auto-generated"), ("List-Id", list_id)]
    if unsubscribe_url:
        url = _single_line("unsubscribe URL", unsubscribe_url)
        if any(character in url for character in " <>,"):
            raise ValueError(f"the unsubscribe URL {url!r} cannot go in a header")
        headers += [("List-Unsubscribe", f"<{url}>"), ("List-Unsubscribe-Post", ONE_CLICK)]
    return headers


@lru_cache(maxsize=16)
def list_id(domain: str) -> str:
    """RFC 2919's ``List-Id``: one list, Bulletin's announcements, named under ``domain`` (the
    Message-ID domain: BULLETIN_SITE_URL's host or the sender's), so a mail filter can tell
    them apart from other lists."""
    return f"Announcements <announcements.{_single_line('list domain', domain)}>"


def _part(subtype: str, content: str) -> str:
    body = content.replace("\r\n", "\n").replace("\r", "\n")
    lines = body.split("\n")
    head = f'Content-Type: text/{subtype}; charset="utf-8"{_CRLF}Content-Transfer-Encoding: '
    if body.isascii() and all(len(line) <= _LONGEST_PLAIN_LINE for line in lines):
        return f"{head}7bit{_CRLF}{_CRLF}{_CRLF.join(lines)}"
    encoded = base64.encodebytes(body.encode("utf-8")).decode("ascii").replace("\n", _CRLF)
    return f"{head}base64{_CRLF}{_CRLF}{encoded.rstrip()}"


def _boundary(*parts: str) -> str:
    while True:
        boundary = f"=_bulletin_{secrets.token_hex(16)}"
        if not any(boundary in part for part in parts):
            return boundary


def message_id_header(message_id: str) -> str:
    """``Message-ID: <…>``, or folded before the msg-id when that line would pass 78
    characters (RFC 5322 section 2.1.1's SHOULD; the msg-id itself may not be folded: a key
    with the installation id and a long domain can still make its own line longer)."""
    line = f"Message-ID: {_single_line('Message-ID', message_id)}"
    return line if len(line) <= 78 else f"Message-ID:{_CRLF} {message_id}"


def email_bytes(
    *,
    sender: str,
    recipient: str,
    subject: str,
    message_id: str,
    text: str,
    html: str,
    listed: list[tuple[str, str]] | None = None,
) -> bytes:
    """The message as sent over SMTP (CRLF line ends; smtplib adds the dot-stuffing).

    ``sender`` and ``recipient`` come from :func:`sender_address` and
    :func:`recipient_address`, ``listed`` from :func:`list_headers`. Raises ValueError for
    anything that cannot be a header.
    """
    text_part, html_part = _part("plain", text), _part("html", html)
    boundary = _boundary(text_part, html_part)
    headers = [
        subject_header(subject),
        f"From: {sender}",
        f"To: {recipient}",
        f"Date: {date_now()}",
        message_id_header(message_id),
        *(f"{name}: {value}" for name, value in listed or ()),
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative;{_CRLF} boundary="{boundary}"',
    ]
    body = (
        f"--{boundary}{_CRLF}{text_part}{_CRLF}--{boundary}{_CRLF}{html_part}{_CRLF}"
        f"--{boundary}--{_CRLF}"
    )
    try:
        return (_CRLF.join(headers) + _CRLF + _CRLF + body).encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("a header is not plain ASCII after encoding") from None
