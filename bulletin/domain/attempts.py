"""Each try of a delivery, as its history: written with the try's outcome, counted as it is."""

from __future__ import annotations

from typing import Any

from django.db import models, transaction

from bulletin.domain.models import Delivery
from bulletin.domain.tallies import count_attempt


class AttemptOutcome(models.TextChoices):
    SENT = "sent", "Sent"
    RETRY = "retry", "Transient error, will retry"
    FAILED = "failed", "Permanent error"
    UNKNOWN = "unknown", "Ambiguous (may have been delivered)"
    INTERRUPTED = "interrupted", "Interrupted (worker lost its lease)"


class Attempt(models.Model):
    """One try's history, written with its outcome (the delivery row itself holds the intent:
    ``sending``, its attempt counted); the reaper writes the tries that never reported."""

    # Indexed by attempt_identity (delivery, number), whose first column serves every lookup.
    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="attempt_log", db_index=False
    )
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["delivery_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="attempt_identity"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The ledger writes attempts in sets and counts them; one saved on its own (a
        # fixture, a repair) is counted here, in the same transaction.
        with transaction.atomic():
            counted = self._state.adding and self.finished_at is not None
            super().save(*args, **kwargs)
            if counted and self.finished_at is not None:
                seconds = max((self.finished_at - self.started_at).total_seconds(), 0.0)
                count_attempt(self.delivery.channel, self.outcome, seconds)
