"""The benchmark's SMTP sink: aiosmtpd on loopback, in its own process so it never shares a
core's GIL with the sender being measured.

It keeps one ``(recipient, Message-ID)`` pair per message so a run can prove that every email
arrived once. Driven over stdin: ``stats`` prints a JSON summary, ``reset`` forgets, EOF stops.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from typing import Any

from aiosmtpd.controller import Controller

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class CountingHandler:
    def __init__(self) -> None:
        self.received: Counter[tuple[str, str]] = Counter()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        found = _MESSAGE_ID.search(envelope.original_content or envelope.content)
        message_id = found.group(1).decode() if found else ""
        for recipient in envelope.rcpt_tos:
            self.received[(recipient, message_id)] += 1
        return "250 OK"

    def stats(self) -> dict[str, int]:
        return {
            "messages": sum(self.received.values()),
            "distinct": len(self.received),
            "recipients": len({recipient for recipient, _ in self.received}),
        }


def main(port: int) -> None:
    handler = CountingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    print(json.dumps({"ready": port}), flush=True)
    try:
        for line in sys.stdin:
            if line.strip() == "reset":
                handler.received.clear()
                print(json.dumps({"reset": True}), flush=True)
            elif line.strip() == "stats":
                print(json.dumps(handler.stats()), flush=True)
    finally:
        controller.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]))
