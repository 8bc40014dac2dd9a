"""An in-memory transport for unit tests of dispatch logic (never used for the real promise)."""

from __future__ import annotations

from typing import ClassVar

from bulletin.channels.base import Message, Transport


class FakeTransport(Transport):
    """Records every message; ``script`` maps an email to errors raised on successive tries."""

    name = "fake"
    deduplicates = False
    sent: ClassVar[list[Message]] = []
    script: ClassVar[dict[str, list[Exception]]] = {}

    @classmethod
    def reset(cls) -> None:
        cls.sent.clear()
        cls.script.clear()

    def send(self, message: Message) -> None:
        who = message.recipient.email if message.recipient else message.destination.name
        errors = self.script.get(who)
        if errors:
            raise errors.pop(0)
        self.sent.append(message)
