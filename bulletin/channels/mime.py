"""An announcement email's bytes, written directly: multipart/alternative, text and HTML.

Django's mail classes build a general MIME tree, then fold every header through the email
package's policies: over a millisecond of CPU per message, which caps one process at a few
hundred emails a second. Every Bulletin email has one shape — a sender, one recipient, a
subject, a Message-ID, a text part and an HTML part — so its bytes are written here directly.
The encoding rules are not reinvented: the email package's ``Header`` encodes and folds any
subject or name that is not plain ASCII (with CRLF: a bare LF is refused by careful servers).
"""

from __future__ import annotations

import base64
import secrets
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr
from functools import lru_cache

_CRLF = "\r\n"
# RFC 5322 allows 998 characters a line; a body line longer than this is sent as base64.
_LONGEST_PLAIN_LINE = 990


def _single_line(what: str, value: str) -> str:
    if any(character in value for character in "\r\n\0"):
        raise ValueError(f"the {what} must be a single line (header injection?)")
    return value


@lru_cache(maxsize=64)
def subject_header(subject: str) -> str:
    """Folded at 78 columns; RFC 2047 encoded-words only when it is not plain ASCII."""
    _single_line("subject", subject)
    return Header(subject, header_name="Subject").encode(linesep=_CRLF)


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
    _single_line("name", name)
    email = envelope_address(email)
    if name.isascii():
        return formataddr((name, email))
    return f"{Header(name, 'utf-8').encode(linesep=_CRLF)} <{email}>"


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


def email_bytes(
    *, sender: str, recipient: str, subject: str, message_id: str, text: str, html: str
) -> bytes:
    """The message as sent over SMTP (CRLF line ends; smtplib adds the dot-stuffing).

    ``sender`` and ``recipient`` come from :func:`sender_address` and
    :func:`recipient_address`. Raises ValueError for anything that cannot be a header.
    """
    text_part, html_part = _part("plain", text), _part("html", html)
    boundary = _boundary(text_part, html_part)
    headers = [
        f"Subject: {subject_header(subject)}",
        f"From: {sender}",
        f"To: {recipient}",
        f"Date: {formatdate(usegmt=True)}",
        f"Message-ID: {_single_line('Message-ID', message_id)}",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
    ]
    body = (
        f"--{boundary}{_CRLF}{text_part}{_CRLF}--{boundary}{_CRLF}{html_part}{_CRLF}"
        f"--{boundary}--{_CRLF}"
    )
    try:
        return (_CRLF.join(headers) + _CRLF + _CRLF + body).encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("a header is not plain ASCII after encoding") from None
