"""What every channel transport is: a small class that sends one rendered message.

A transport raises one of three errors and nothing else, so dispatch can decide the delivery's
fate without knowing the protocol: ``TransientError`` (not delivered, try again later),
``PermanentError`` (will never work: stop), ``AmbiguousError`` (it may have been delivered:
resend only if the receiver de-duplicates by the idempotency key).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar


class TransportError(Exception):
    """Base of the three outcomes a transport may report instead of success."""


class TransientError(TransportError):
    """Definitely not delivered; worth another try after a backoff."""


class PermanentError(TransportError):
    """Definitely not delivered, and retrying cannot help (bad address, refused, unauthorised)."""


class AmbiguousError(TransportError):
    """The request may or may not have reached the receiver (e.g. connection lost after sending)."""


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str
    timezone: str

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.strip() else self.name


@dataclass(frozen=True)
class Message:
    """One delivery's content, rendered for a recipient; the key travels to the provider."""

    idempotency_key: str
    recipient: Recipient
    title: str
    text: str
    html: str


class Transport:
    """One channel. Opened once per dispatch batch so connections are reused, then closed."""

    name: ClassVar[str]
    # True when the receiver drops a second message carrying the same idempotency key, which
    # makes a resend after an interrupted send safe.
    deduplicates: ClassVar[bool] = False

    def open(self) -> None:
        """Set up a connection for the batch; failures surface as TransientError."""

    def close(self) -> None:
        """Release the batch's connection; never raises."""

    def send(self, message: Message) -> None:
        raise NotImplementedError

    def __enter__(self) -> Transport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
