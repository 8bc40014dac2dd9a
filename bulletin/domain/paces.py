"""Rate-limit slots shared by every worker (``bulletin.dispatch.pacing`` books them)."""

from __future__ import annotations

from django.db import models


class ChannelPace(models.Model):
    """When the next send on a rate-limited key may go out (a Slack channel, a Teams webhook,
    a provider's whole API after a 429). Kept here, not in a worker's memory, so every worker
    respects one pace and one backoff."""

    key = models.CharField(max_length=300, unique=True)
    next_slot_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.key} @ {self.next_slot_at:%H:%M:%S}"
