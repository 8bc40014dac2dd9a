"""A channel that sends nothing, so a benchmark measures dispatch itself: claims, leases,
intents, outcomes. It remembers what it was asked to send, to prove nothing went twice."""

from __future__ import annotations

from typing import ClassVar

from bulletin.channels import TRANSPORTS
from bulletin.channels.base import Message, Transport


class NoopTransport(Transport):
    name = "noop"
    # Sending nothing twice is harmless, like a receiver that drops a repeated key.
    deduplicates = True
    reads_parts = False  # sends nothing, so reads nothing
    sent: ClassVar[list[int]] = []

    def send(self, message: Message) -> None:
        self.sent.append(message.delivery_id)


class NoopOnceTransport(NoopTransport):
    """The same, declared non-deduplicating: dispatch treats it like email (intent per row)."""

    name = "noop-once"
    deduplicates = False


def register() -> None:
    for transport in (NoopTransport, NoopOnceTransport):
        TRANSPORTS[transport.name] = transport
