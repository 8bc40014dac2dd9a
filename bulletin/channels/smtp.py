"""SMTP mail transactions on several connections at once, driven from one thread.

A message costs four round trips (MAIL, RCPT, DATA, the message itself), so a sender on one
connection mostly waits. Threads hide the wait but pay for it in the interpreter lock and a
context switch per reply; here one dispatcher keeps up to N connections busy instead: it writes
the next command on each connection that has answered and reads whichever answers next
(``selectors``). Measured against the benchmark's loopback sink (bench/README.md): one thread
with 8 connections sent 2,000 to 2,270 emails/s at 0.32 to 0.36 ms of CPU each; four threads of
one connection each, the design before this one, 1,160/s at 0.70 ms.

Connections are opened by Django's SMTP backend (connect, SSL or STARTTLS, login: smtplib, as
``EMAIL_*`` configure it). Each then carries one mail transaction at a time, reply by reply::

    MAIL FROM → 250 → RCPT TO → 250/251 → DATA → 354 → the message and "." → 250: delivered

What a reply means (RFC 5321): 4yz is transient, 5yz permanent. A refused recipient is
followed by RSET and the connection is kept, as smtplib's ``sendmail`` does; any other refusal
closes it, and the next message gets a new one. A connection that breaks or stays silent past
``EMAIL_TIMEOUT`` before the message has been written cannot have delivered it
(``TransientError``); once the message is on its way it may have (``AmbiguousError``).
"""

from __future__ import annotations

import contextlib
import math
import re
import selectors
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from django.core.mail import get_connection

from bulletin.channels.base import (
    AmbiguousError,
    Ended,
    Message,
    PermanentError,
    Sends,
    TransientError,
)

_CRLF = b"\r\n"
# RFC 5321 4.5.2: a line of the message that starts with a dot gets a second one.
_LEADING_DOT = re.compile(rb"(?m)^\.")
# smtplib refuses a reply line over 8,192 bytes; a whole reply is bounded here.
_LONGEST_REPLY = 65536
_READ_SIZE = 65536


@dataclass(frozen=True)
class Envelope:
    """A message as SMTP carries it: the envelope's two addresses and the bytes."""

    sender: str
    recipient: str
    data: bytes


class _Step(Enum):
    MAIL = "MAIL FROM"
    RCPT = "RCPT TO"
    DATA = "DATA"
    MESSAGE = "the message"
    RSET = "RSET"


def _refusal(code: int, what: str, reply: bytes) -> TransientError | PermanentError:
    detail = f"{what}: {code} {reply!r}"
    return PermanentError(detail) if 500 <= code < 600 else TransientError(detail)


def _on_the_wire(data: bytes) -> bytes:
    """The message dot-stuffed and ended by the line holding only "."."""
    stuffed = _LEADING_DOT.sub(b"..", data)
    return stuffed + (b"" if stuffed.endswith(_CRLF) else _CRLF) + b"." + _CRLF


def _reply(lines: list[bytes]) -> tuple[int, bytes]:
    """A reply's code and text, read as smtplib's ``getreply`` does (-1: not a code)."""
    code = int(lines[-1][:3]) if lines[-1][:3].isdigit() else -1
    return code, b"\n".join(line[4:].strip() for line in lines)


class _Connection:
    """One connection, and the mail transaction under way on it if any."""

    def __init__(self, selector: selectors.BaseSelector, timeout: float | None) -> None:
        self.selector, self.timeout = selector, timeout
        self.backend: Any = None  # Django's SMTP backend, which opened it
        self.sock: Any = None
        self.message: Message | None = None
        self.envelope: Envelope | None = None
        self.step: _Step | None = None
        self.refused: TransientError | PermanentError | None = None  # told after RSET
        self.deadline = math.inf
        self._buffer = bytearray()
        self._lines: list[bytes] = []
        self._announce_size = False

    @property
    def is_open(self) -> bool:
        return self.sock is not None

    @property
    def busy(self) -> bool:
        return self.message is not None

    def open(self) -> None:
        backend = get_connection(fail_silently=False)
        try:
            backend.open()
            smtp = backend.connection
            smtp.ehlo_or_helo_if_needed()
        except (OSError, smtplib.SMTPException) as exc:
            _quit(backend)
            raise TransientError(f"cannot connect to the mail server: {exc}") from exc
        self.backend, self.sock = backend, smtp.sock
        self._announce_size = bool(smtp.does_esmtp and smtp.has_extn("size"))
        self.selector.register(self.sock, selectors.EVENT_READ, self)

    def close(self, *, politely: bool = True) -> None:
        """Say QUIT when nothing is wrong; otherwise just drop the socket."""
        backend, self.backend, sock, self.sock = self.backend, None, self.sock, None
        self._buffer.clear()
        self._lines.clear()
        if backend is None:
            return
        self.selector.unregister(sock)
        if politely:
            _quit(backend)
            return
        with contextlib.suppress(OSError):
            backend.connection.close()
        backend.connection = None

    def begin(self, message: Message, envelope: Envelope) -> None:
        """Start the mail transaction; raises TransientError if the connection is gone."""
        self.message, self.envelope, self.refused = message, envelope, None
        size = f" SIZE={len(envelope.data)}" if self._announce_size else ""
        ended = self._write(_Step.MAIL, f"MAIL FROM:<{envelope.sender}>{size}\r\n".encode())
        if ended is not None and ended.error is not None:
            raise ended.error  # broken before anything was sent: a TransientError

    def read(self) -> Ended | None:
        """Take what the server sent; returns the send it ended, if it ended one."""
        try:
            chunk = self.sock.recv(_READ_SIZE)
            while isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
                chunk += self.sock.recv(_READ_SIZE)  # decrypted already: select cannot see it
        except OSError as exc:
            return self.broken(f"{exc!r}")
        if not chunk:
            return self.broken("the server closed the connection")
        self._buffer += chunk
        while (end := self._buffer.find(_CRLF)) >= 0:
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 2]
            self._lines.append(line)
            if line[3:4] != b"-":  # the last line of a reply
                lines, self._lines = self._lines, []
                return self._answer(*_reply(lines))
        if len(self._buffer) > _LONGEST_REPLY:
            return self.broken("the server's reply is too long")
        return None

    def broken(self, reason: str) -> Ended | None:
        """The connection failed or fell silent: dropped, and the send under way ended."""
        step = self.step
        self.close(politely=False)
        if not self.busy:
            return None
        if step is _Step.RSET:  # the message had been refused already
            return self._end(self.refused)
        if step is _Step.MESSAGE:
            return self._end(AmbiguousError(f"connection lost while sending: {reason}"))
        return self._end(TransientError(f"connection lost before the message was sent: {reason}"))

    def _answer(self, code: int, text: bytes) -> Ended | None:
        envelope = self.envelope
        if envelope is None:
            # Spoken to outside a transaction: a server about to close says so (421). Drop it.
            self.close(politely=False)
            return None
        if self.step is _Step.MAIL:
            if code == 250:
                return self._write(_Step.RCPT, f"RCPT TO:<{envelope.recipient}>\r\n".encode())
            return self._refused(_refusal(code, "sender refused", text))
        if self.step is _Step.RCPT:
            if code in (250, 251):
                return self._write(_Step.DATA, b"DATA\r\n")
            if code == 421:  # the server is closing the connection
                return self._refused(_refusal(code, "recipient refused", text))
            self.refused = _refusal(code, "recipient refused", text)
            return self._write(_Step.RSET, b"RSET\r\n")
        if self.step is _Step.DATA:
            if code == 354:
                return self._write(_Step.MESSAGE, _on_the_wire(envelope.data))
            return self._refused(_refusal(code, "DATA refused", text))
        if self.step is _Step.MESSAGE:
            if code == 250:
                return self._end(None)
            return self._refused(_refusal(code, "message refused", text))
        ended = self._end(self.refused)  # RSET answered: the refusal can be told now
        if code != 250:
            self.close(politely=False)
        return ended

    def _write(self, step: _Step, data: bytes) -> Ended | None:
        self.step = step
        self.deadline = time.monotonic() + self.timeout if self.timeout else math.inf
        try:
            self.sock.sendall(data)
        except OSError as exc:
            return self.broken(f"{exc!r}")
        return None

    def _refused(self, error: TransientError | PermanentError) -> Ended:
        self.close(politely=False)
        return self._end(error)

    def _end(self, error: Exception | None) -> Ended:
        assert self.message is not None
        ended = Ended(self.message, error)
        self.message = self.envelope = self.step = self.refused = None
        self.deadline = math.inf
        return ended


def _quit(backend: Any) -> None:
    # The connection is being thrown away; nothing more to learn from it.
    with contextlib.suppress(OSError, smtplib.SMTPException):
        backend.close()


class SmtpSends(Sends):
    """Up to ``width`` mail transactions at once, one on each of as many connections."""

    def __init__(
        self, width: int, envelope: Callable[[Message], Envelope], timeout: float | None
    ) -> None:
        self._envelope = envelope
        self._selector = selectors.DefaultSelector()
        self._connections = [_Connection(self._selector, timeout) for _ in range(width)]
        self._cannot_connect: TransientError | None = None

    def ready(self, wanted: int) -> int:
        """Idle connections, up to ``wanted`` of them opened first (before any intent is
        written, so that a send in doubt is never one still connecting); one if none is busy
        and none could open."""
        self._drop_spoken_to()
        self._cannot_connect = None
        idle = [c for c in self._connections if not c.busy]
        count = sum(1 for c in idle if c.is_open)
        for connection in (c for c in idle if not c.is_open):
            if count >= wanted:
                break
            if not self._open(connection):
                break  # the server is unreachable: no use trying the others now
            count += 1
        return count or (1 if len(idle) == len(self._connections) else 0)

    def begin(self, message: Message) -> None:
        envelope = self._envelope(message)  # PermanentError if it cannot be built
        connection = next((c for c in self._connections if c.is_open and not c.busy), None)
        if connection is None:
            error, self._cannot_connect = self._cannot_connect, None
            if error is not None:
                raise error  # what ready() was told when it tried
            connection = next(c for c in self._connections if not c.busy)
            connection.open()
        connection.begin(message, envelope)

    def ended(self) -> list[Ended]:
        """Wait for replies until at least one send has ended (or none is under way)."""
        ended: list[Ended] = []
        while not ended and any(c.busy for c in self._connections):
            wait = min(c.deadline for c in self._connections) - time.monotonic()
            for key, _ in self._selector.select(None if wait == math.inf else max(wait, 0)):
                if (end := key.data.read()) is not None:
                    ended.append(end)
            now = time.monotonic()
            for connection in self._connections:
                if connection.deadline > now:
                    continue
                if (end := connection.broken(f"no reply in {connection.timeout:g} s")) is not None:
                    ended.append(end)
        return ended

    def close(self) -> None:
        for connection in self._connections:
            connection.close(politely=not connection.busy)
        self._selector.close()

    def _open(self, connection: _Connection) -> bool:
        try:
            connection.open()
        except TransientError as exc:
            self._cannot_connect = exc
            return False
        return True

    def _drop_spoken_to(self) -> None:
        """An idle connection with something to read was closed by the server, or is about
        to be (421): dropped now, rather than found out by the next message's attempt."""
        for key, _ in self._selector.select(0):
            if not key.data.busy:
                key.data.close(politely=False)
