"""Email through Django's mail connections (console by default, SMTP when EMAIL_HOST is set).

Over SMTP the message's bytes are written by :mod:`bulletin.channels.mime` and sent by
:mod:`bulletin.channels.smtp`, several at once (``BULLETIN_EMAIL_CONNECTIONS`` connections per
dispatcher); the console, file and in-memory backends get Django's own message object.

With BULLETIN_BOUNCE_ADDRESS set, each email's envelope sender (MAIL FROM) is its delivery's
VERP return path (:func:`bulletin.channels.verp.return_path`), so its bounce names it. No
``Return-Path`` header is written here: the final MTA writes it from MAIL FROM on delivery
(RFC 5321 section 4.4), and one a sender writes is wrong or removed.

SMTP has no idempotency key the server honours, so email does not de-duplicate: a send that
breaks after the message went out is ambiguous, and dispatch marks it ``unknown``. The
delivery's key becomes the Message-ID so receivers and humans can still spot a duplicate.
"""

from __future__ import annotations

import contextlib
from email.utils import formataddr
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.core.mail.message import BadHeaderError
from django.core.validators import validate_email
from django.utils.module_loading import import_string

from bulletin.channels.base import (
    AmbiguousError,
    Message,
    PermanentError,
    Recipient,
    Sends,
    TransientError,
    Transport,
)
from bulletin.channels.email_layout import html_part, text_part
from bulletin.channels.mime import (
    date_now,
    email_bytes,
    envelope_address,
    list_headers,
    list_id,
    recipient_address,
    sender_address,
    sender_envelope,
)
from bulletin.channels.smtp import Envelope, SmtpSends
from bulletin.channels.verp import return_path
from bulletin.conf import Options, message_id_domain, options
from bulletin.conf_email import SenderNotAllowed, allowed_sender


def message_id(idempotency_key: str) -> str:
    return f"<{idempotency_key}@{_domain(options(), settings.DEFAULT_FROM_EMAIL)}>"


def _listed(message: Message) -> list[tuple[str, str]]:
    """Auto-Submitted, List-Id and, unless the announcement is mandatory, the one-click
    unsubscribe pair (see :func:`bulletin.channels.mime.list_headers`)."""
    domain = _domain(options(), settings.DEFAULT_FROM_EMAIL)
    unsubscribe = "" if message.mandatory else message.unsubscribe_url
    return list_headers(list_id(domain), unsubscribe)


@lru_cache(maxsize=4)
def _domain(chosen: Options, from_email: str) -> str:
    """Per settings, not per message (``chosen`` is hashable and swapped whole by tests)."""
    return message_id_domain(from_email)


def from_address(message: Message) -> str:
    """The From: the announcement's sender as BULLETIN_SENDERS lists it, else
    DEFAULT_FROM_EMAIL; PermanentError for a sender no longer (or never) allowed."""
    if not message.sender:
        return str(settings.DEFAULT_FROM_EMAIL)
    try:
        return _allowed(message.sender, options())
    except SenderNotAllowed as exc:
        raise PermanentError(str(exc)) from None


@lru_cache(maxsize=16)
def _allowed(sender: str, chosen: Options) -> str:
    return allowed_sender(sender, chosen.sender_list())


def _over_smtp() -> bool:
    return issubclass(import_string(settings.EMAIL_BACKEND), SmtpBackend)


def _person(message: Message) -> Recipient:
    person = message.person
    try:
        validate_email(person.email)
    except ValidationError:
        raise PermanentError(f"invalid email address {person.email!r}") from None
    return person


class EmailTransport(Transport):
    name = "email"
    deduplicates = False

    def __init__(self) -> None:
        self._connection: Any = None  # the console, file or in-memory backend
        self._smtp: SmtpSends | None = None  # send()'s own connection over SMTP

    def sends(self) -> Sends:
        if not _over_smtp():
            return super().sends()
        return SmtpSends(options().email_connections, self._envelope, settings.EMAIL_TIMEOUT)

    def open(self) -> None:
        if self._connection is not None or _over_smtp():
            return  # over SMTP, connections open when a message needs one
        connection = get_connection(fail_silently=False)
        try:
            connection.open()
        except OSError as exc:
            raise TransientError(f"cannot open the mail backend: {exc}") from exc
        self._connection = connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()
        if connection is not None:
            with contextlib.suppress(OSError):
                connection.close()

    def send(self, message: Message) -> None:
        """One message (a test send; dispatch uses ``sends``): over SMTP on a connection of
        its own, kept until ``close``; otherwise through Django's backend."""
        if _over_smtp():
            self._smtp = self._smtp or SmtpSends(1, self._envelope, settings.EMAIL_TIMEOUT)
            self._smtp.begin(message)
            for ended in self._smtp.ended():
                if ended.error is not None:
                    raise ended.error
            return
        email = self._email(message)
        self.open()
        try:
            self._connection.send_messages([email])
        except OSError as exc:  # half written, perhaps: it may be there
            raise AmbiguousError(f"the mail backend failed while writing: {exc!r}") from exc

    def _envelope(self, message: Message) -> Envelope:
        """Sender, recipient and the bytes on the wire; PermanentError if it cannot be built."""
        person, sent_from = _person(message), from_address(message)
        try:
            data = email_bytes(
                sender=sender_address(sent_from),
                recipient=recipient_address(person.name, person.email),
                subject=message.title,
                message_id=message_id(message.idempotency_key),
                text=text_part(message),
                html=html_part(message),
                listed=_listed(message),
            )
            sender = return_path(message.delivery_id) or sender_envelope(sent_from)
            recipient = envelope_address(person.email)
        except ValueError as exc:
            raise PermanentError(f"cannot build the email: {exc}") from exc
        return Envelope(sender, recipient, data)

    def _email(self, message: Message) -> EmailMultiAlternatives:
        person, sent_from = _person(message), from_address(message)
        # Django's convention (ticket 9214, followed by its SMTP backend and by anymail's
        # backends): ``from_email`` is the envelope sender, a "From" header the visible one.
        bounces_to = return_path(message.delivery_id)
        try:
            email = EmailMultiAlternatives(
                subject=message.title,
                body=text_part(message),
                from_email=bounces_to or sent_from,
                to=[formataddr((person.name, person.email))],
                headers={
                    "Message-ID": message_id(message.idempotency_key),
                    "Date": date_now(),
                    **({"From": sent_from} if bounces_to else {}),
                    **dict(_listed(message)),
                },
            )
            email.attach_alternative(html_part(message), "text/html")
            email.message()  # header and address checks, before anything is sent
        except (BadHeaderError, ValueError) as exc:
            raise PermanentError(f"cannot build the email: {exc}") from exc
        return email
