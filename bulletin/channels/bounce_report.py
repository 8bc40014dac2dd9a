"""What one returned message says, once read: the contract between reading bounces
(``bulletin.channels.bounce_parse``, the commands and the provider webhooks) and recording them
(``bulletin.dispatch.bounces.record``, the one writer of bounces, suppressions and a delivery's
move from ``sent`` to ``bounced``).

Readers never touch the database; the recorder never parses mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class BounceKind(StrEnum):
    HARD = "hard"  # 5.x.x: the address does not work; the delivery becomes ``bounced``
    SOFT = "soft"  # 4.x.x: counted against the delivery; several in a window suppress
    COMPLAINT = "complaint"  # ARF (RFC 5965) or a provider's complaint event
    AUTO_REPLY = "auto_reply"  # out-of-office and other automatic replies: ignored
    UNREADABLE = "unreadable"  # could not be understood: kept and shown to HR


@dataclass(frozen=True)
class BounceReport:
    kind: BounceKind
    # Where it came in: "pipe" (receive_bounce), "maildir", "imap", "webhook:<provider>".
    source: str
    # The address that bounced or complained, lower-cased; "" when the report does not say.
    recipient: str = ""
    # RFC 3463 enhanced status code ("5.1.1"), "" when none.
    status: str = ""
    # The receiving server's words (Diagnostic-Code, the provider's reason), at most 1,000
    # characters.
    diagnostic: str = ""
    # The delivery a verified VERP key names (bulletin.channels.verp); None when no key, or
    # when the key was refused (then ``key_refused`` says why).
    delivery_id: int | None = None
    key_refused: str = ""
    # The returned message's Message-ID (as Bulletin wrote it, with the angle brackets), or
    # the provider's message id for a webhook event; "" when not found.
    message_id: str = ""
    # Why it is UNREADABLE (or a note on how it was read, e.g. "flufl.bounce"), for HR.
    note: str = ""
