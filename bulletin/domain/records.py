"""What people did: versions of an announcement's content, approvals, the audit log, API tokens.

Kept apart from the delivery ledger in models.py; they are history and access, not sending.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from bulletin.domain.languages import LONGEST_TAG
from bulletin.domain.models import Announcement

# The longest announcement body accepted, in characters (every way in checks it: the HR form,
# the API, the command line). Far above any real announcement; it bounds what one send renders.
MAX_BODY_CHARS = 100_000


class AnnouncementVersion(models.Model):
    """A snapshot of what an announcement says. Editing makes a new one; occurrences point at
    the version they send, so what was sent is never rewritten."""

    announcement = models.ForeignKey(
        Announcement, on_delete=models.CASCADE, related_name="versions"
    )
    # Each language's texts are versioned on their own: ``number`` counts per (announcement,
    # language). The announcement's own language holds its default versions.
    language = models.CharField(max_length=LONGEST_TAG, default="", db_default="")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField()
    # The translation withdrawn: from this version on its readers get the fallback text.
    removed = models.BooleanField(default=False, db_default=False)
    # Its author asked everyone who acknowledged an earlier text of this language to
    # acknowledge again (a material edit; bulletin.dispatch.translations.ask_again).
    asks_again = models.BooleanField(default=False, db_default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "announcement version"
        verbose_name_plural = "announcement versions"
        ordering = ["announcement_id", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["announcement", "language", "number"], name="version_identity"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.announcement_id} {self.language} v{self.number}"


class Approval(models.Model):
    """A second person's yes to one version: the author can never approve their own."""

    announcement = models.ForeignKey(
        Announcement, on_delete=models.CASCADE, related_name="approvals"
    )
    version = models.ForeignKey(AnnouncementVersion, on_delete=models.CASCADE, related_name="+")
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-approved_at"]

    def __str__(self) -> str:
        return f"{self.version} approved by {self.approved_by_id}"


class AuditAction(models.TextChoices):
    CREATED = "created", "Created"
    EDITED = "edited", "Edited"
    SUBMITTED = "submitted", "Submitted for approval"
    APPROVED = "approved", "Approved"
    SCHEDULED = "scheduled", "Scheduled"
    PAUSED = "paused", "Paused"
    RESUMED = "resumed", "Resumed"
    CANCELLED = "cancelled", "Cancelled"
    RETRIED = "retried", "Deliveries retried"
    TEST_SENT = "test_sent", "Test sent"
    DELETED = "deleted", "Draft deleted"
    SETTLED = "settled", "Unknown deliveries settled by hand"
    UNSUBSCRIBED = "unsubscribed", "Opted out of email (one-click unsubscribe)"
    NOT_HELD = "not_held", "Working hours bypassed (mandatory)"
    RELEASED = "released", "Held deliveries sent now regardless of working hours"
    REMINDED = "reminded", "Reminder sent to those who have not acknowledged"
    INVITED = "invited", "A department invited to their inboxes"
    PROVISIONED = "provisioned", "Employee created or changed by the identity provider (SCIM)"
    DEPROVISIONED = "deprovisioned", "Employee deactivated by the identity provider (SCIM)"
    COMPLAINED = "complained", "Opted out of email: they reported an announcement as spam"
    LIFTED = "lifted", "An address's suppression lifted: email goes to it again"


class AuditEvent(models.Model):
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    announcement = models.ForeignKey(
        Announcement, null=True, blank=True, on_delete=models.CASCADE, related_name="audit"
    )
    at = models.DateTimeField(auto_now_add=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "audit event"
        verbose_name_plural = "audit events"
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_id} at {self.at:%Y-%m-%d %H:%M}"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiToken(models.Model):
    """An API credential: only its SHA-256 is stored; the token itself is shown once."""

    PREFIX = "blt_"

    name = models.CharField(max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    key_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12, help_text="The token's first characters.")
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"
        verbose_name_plural = "API tokens"
        ordering = ["-created_at"]
        indexes = [
            # authentication: key_hash=? AND revoked_at IS NULL
            models.Index(fields=["key_hash"], name="token_live_idx", condition=Q(revoked_at=None)),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.hint}…)"

    @classmethod
    def issue(cls, user: object, name: str, scopes: list[str]) -> tuple[ApiToken, str]:
        """A new token and its secret value, which is not stored and cannot be shown again."""
        raw = cls.PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user, name=name, key_hash=hash_token(raw), hint=raw[:10], scopes=scopes
        )
        return token, raw
