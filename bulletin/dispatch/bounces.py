"""Recording bounces and complaints: the one writer of Bounce rows, suppressions and the
ledger move ``sent`` → ``bounced``. (Being built: see issue 20.)"""

from __future__ import annotations

from dataclasses import dataclass

from bulletin.channels.bounce_report import BounceReport


@dataclass(frozen=True)
class Recorded:
    bounce_id: int | None  # the kept Bounce row (None: ignored, e.g. an auto-reply)
    delivery_id: int | None  # the delivery it was matched to
    outcome: str  # "bounced", "soft", "complaint", "ignored", "unreadable", "duplicate", "unmatched"


def record(raw: bytes, report: BounceReport) -> Recorded:
    """Keep ``raw`` (the whole message, or a webhook's JSON) with what ``report`` says, and act
    on it. Idempotent: the same message recorded twice is one bounce (``duplicate``)."""
    raise NotImplementedError("bounces.record is being built (issue 20)")
