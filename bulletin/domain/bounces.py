"""Returned mail, kept: every bounce and complaint Bulletin was told of (``Bounce``), and the
addresses it no longer sends email to (``Suppression``).

Only ``bulletin.dispatch.bounces`` writes them (``record`` and ``lift``); fan-out reads the
active suppressions (bulletin.dispatch.fanout), HR reads both (the Suppressions screen, the
employee's page).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from bulletin.channels.bounce_report import BounceKind


class Bounce(models.Model):
    """One returned message (a DSN, an ARF report, a provider's event), kept whole (up to
    BULLETIN_BOUNCE_MAX_BYTES) with what reading it found and what recording it did."""

    kind = models.CharField(max_length=16, choices=[(k.value, k.value) for k in BounceKind])
    # What record() did with it: bounced, soft, complaint, unreadable, unmatched.
    outcome = models.CharField(max_length=16)
    source = models.CharField(max_length=64)
    # The address that bounced, lower-cased: the report's, else the matched delivery's.
    recipient = models.CharField(max_length=254, blank=True)
    status = models.CharField(max_length=16, blank=True)
    diagnostic = models.TextField(blank=True)
    message_id = models.CharField(max_length=998, blank=True)
    note = models.TextField(blank=True)
    raw = models.BinaryField()
    # The message's size as it came; ``raw`` holds at most BULLETIN_BOUNCE_MAX_BYTES of it.
    raw_size = models.PositiveBigIntegerField(default=0)
    # SHA-256 of the whole message as it came: the same message twice is one row.
    digest = models.CharField(max_length=64, unique=True)
    # No database constraint: retention deletes old sent deliveries by SQL (ledger.orders.prune)
    # and their bounces must stay, still naming the delivery they were about.
    delivery = models.ForeignKey(
        "bulletin.Delivery",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="bounces",
    )
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            # Soft bounces of one address within the window (dispatch.bounces._soft_limit_hit).
            models.Index(fields=["recipient", "received_at"], name="bounce_recipient_idx"),
            # The Suppressions screen's "Unreadable bounces".
            models.Index(
                fields=["-received_at"],
                name="bounce_unreadable_idx",
                condition=Q(kind=BounceKind.UNREADABLE.value),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} bounce {self.pk} ({self.recipient or 'no recipient'})"


class Suppression(models.Model):
    """An address Bulletin no longer emails: it bounced hard, or softly too often. Keyed by the
    address (an employee whose address changed is not suppressed) and naming the employee it
    belonged to. Lifting keeps the row (``lifted_at``); a later bounce suppresses it anew."""

    address = models.CharField(max_length=254)  # lower-cased
    employee = models.ForeignKey(
        "bulletin.Employee",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="suppressions",
    )
    bounce = models.ForeignKey(Bounce, on_delete=models.PROTECT, related_name="suppressions")
    # What a skipped delivery says: "suppressed: 5.1.1 user unknown" (fan-out copies it).
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField()
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One active suppression per address; its index is fan-out's look-up too.
            models.UniqueConstraint(
                fields=["address"],
                condition=Q(lifted_at__isnull=True),
                name="suppression_active_identity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.address} suppressed since {self.created_at:%Y-%m-%d}"
