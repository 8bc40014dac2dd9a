"""Email through Django's mail connections (console by default, SMTP when EMAIL_HOST is set).

Over SMTP the message's bytes are written by :mod:`bulletin.channels.mime` and handed to the
open connection; the console, file and in-memory backends get Django's own message object.

SMTP has no idempotency key the server honours, so email does not de-duplicate: a send that
breaks after the message went out is ambiguous, and dispatch marks it ``unknown``. The
delivery's key becomes the Message-ID so receivers and humans can still spot a duplicate.
"""

from __future__ import annotations

import contextlib
import smtplib
from email.utils import formataddr
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.message import BadHeaderError
from django.core.validators import validate_email

from bulletin.channels.base import (
    AmbiguousError,
    Message,
    PermanentError,
    TransientError,
    Transport,
)
from bulletin.channels.mime import (
    email_bytes,
    envelope_address,
    recipient_address,
    sender_address,
    sender_envelope,
)
from bulletin.conf import options


def message_id(idempotency_key: str) -> str:
    return f"<{idempotency_key}@{options().message_id_domain}>"


def _by_code(code: int, detail: str) -> Exception:
    # RFC 5321: 4yz is a transient negative reply, 5yz permanent.
    return PermanentError(detail) if 500 <= code < 600 else TransientError(detail)


def _transmit(smtp: smtplib.SMTP, sender: str, recipient: str, data: bytes) -> None:
    """One SMTP mail transaction: smtplib's ``sendmail`` for one recipient, raising the same
    exceptions, without its re-parsing of addresses already plain (a tenth of an email's CPU).
    """
    smtp.ehlo_or_helo_if_needed()
    size = f" SIZE={len(data)}" if smtp.does_esmtp and smtp.has_extn("size") else ""
    code, reply = smtp.docmd("mail", f"FROM:<{sender}>{size}")
    if code != 250:
        _abandon(smtp, code)
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    code, reply = smtp.docmd("rcpt", f"TO:<{recipient}>")
    if code not in (250, 251):
        _abandon(smtp, code)
        raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
    code, reply = smtp.data(data)
    if code != 250:
        _abandon(smtp, code)
        raise smtplib.SMTPDataError(code, reply)


def _abandon(smtp: smtplib.SMTP, code: int) -> None:
    """Leave the connection ready for the next message, as ``sendmail`` does: 421 means the
    server is closing it; otherwise RSET ends the failed transaction."""
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        if code == 421:
            smtp.close()
        else:
            smtp.rset()


class EmailTransport(Transport):
    name = "email"
    deduplicates = False

    def __init__(self) -> None:
        self._connection: Any = None

    def open(self) -> None:
        if self._connection is not None:
            return
        connection = get_connection(fail_silently=False)
        try:
            connection.open()
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientError(f"cannot connect to the mail server: {exc}") from exc
        self._connection = connection

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            # The connection is being thrown away; nothing more to learn from it.
            with contextlib.suppress(OSError, smtplib.SMTPException):
                connection.close()

    def send(self, message: Message) -> None:
        recipient = message.person
        try:
            validate_email(recipient.email)
        except ValidationError:
            raise PermanentError(f"invalid email address {recipient.email!r}") from None
        self.open()
        smtp = getattr(self._connection, "connection", None)
        try:
            if isinstance(smtp, smtplib.SMTP):
                # Django's SMTP backend, connected: it is handed the bytes, written once.
                _transmit(smtp, *self._envelope(message))
            else:  # the console, file and in-memory backends take Django's own message
                self._connection.send_messages([self._email(message)])
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise _by_code(code, f"recipient refused: {code} {reply!r}") from exc
        except smtplib.SMTPResponseException as exc:
            self.close()
            raise _by_code(exc.smtp_code, f"{exc.smtp_code} {exc.smtp_error!r}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            # The connection broke while the message was in flight: it may have been accepted.
            self.close()
            raise AmbiguousError(f"connection lost while sending: {exc!r}") from exc

    def _envelope(self, message: Message) -> tuple[str, str, bytes]:
        """Sender, recipient and the bytes on the wire; PermanentError if it cannot be built."""
        person = message.person
        try:
            data = email_bytes(
                sender=sender_address(settings.DEFAULT_FROM_EMAIL),
                recipient=recipient_address(person.name, person.email),
                subject=message.title,
                message_id=message_id(message.idempotency_key),
                text=message.text,
                html=message.html,
            )
            envelope = sender_envelope(settings.DEFAULT_FROM_EMAIL), envelope_address(person.email)
        except ValueError as exc:
            raise PermanentError(f"cannot build the email: {exc}") from exc
        return *envelope, data

    def _email(self, message: Message) -> EmailMultiAlternatives:
        try:
            email = EmailMultiAlternatives(
                subject=message.title,
                body=message.text,
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=[formataddr((message.person.name, message.person.email))],
                headers={"Message-ID": message_id(message.idempotency_key)},
            )
            email.attach_alternative(message.html, "text/html")
            email.message()  # header and address checks, before anything is sent
        except (BadHeaderError, ValueError) as exc:
            raise PermanentError(f"cannot build the email: {exc}") from exc
        return email
