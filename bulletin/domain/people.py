"""The people Bulletin reaches: employees, as the roster, SCIM, the API and the admin write them.

Kept apart from the ledger (``bulletin.domain.models``): an employee is who receives, not what
was sent; the ledger's rows point here.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from bulletin.domain.languages import LONGEST_TAG, validate_language


def validate_single_line(value: str) -> None:
    # A newline in a title would become a header injection in email and a broken Slack text.
    if "\n" in value or "\r" in value:
        raise ValidationError("must be a single line (no line breaks)")


def validate_zone(value: str) -> None:
    from bulletin.scheduling.rules import ScheduleError, parse_zone

    try:
        parse_zone(value)
    except ScheduleError as exc:
        raise ValidationError(str(exc)) from None


class Employee(models.Model):
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=200, validators=[validate_single_line])
    department = models.CharField(max_length=100, blank=True, db_index=True)
    # By name (the column holds it, as before locations were records): audiences, the CSV and
    # the API all name a location, and filtering by it needs no join.
    location = models.ForeignKey(
        "bulletin.Location",
        to_field="name",
        db_column="location",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="employees",
    )
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_zone])
    active = models.BooleanField(default=True)
    # When HR last emailed them a sign-in link to their inbox (bulletin.interfaces.accounts).
    invited_at = models.DateTimeField(null=True, blank=True, editable=False)
    away_until = models.DateField(
        null=True,
        blank=True,
        help_text="The last day of their leave: deliveries within working hours wait until "
        "their first working day after it.",
    )
    slack_user_id = models.CharField(
        max_length=32,
        blank=True,
        help_text="Slack member id, typed in by hand: used as given, never replaced by a "
        "look-up. Empty: looked up by email (and remembered).",
    )
    # What Slack told us, remembered so a second announcement costs one call per DM, not three
    # (users.lookupByEmail and conversations.open are Tier 3: about 50 a minute). Each cached id
    # names what it was found for, so it goes stale by itself when the email or the member id
    # changes, whichever way the row was written (form, import, API, SCIM).
    slack_found_id = models.CharField(
        max_length=32, blank=True, default="", db_default="", editable=False
    )
    slack_found_for = models.CharField(
        max_length=254, blank=True, default="", db_default="", editable=False
    )
    slack_dm_channel = models.CharField(
        max_length=32, blank=True, default="", db_default="", editable=False
    )
    slack_dm_user = models.CharField(
        max_length=32, blank=True, default="", db_default="", editable=False
    )
    # The login an employee uses to read their in-app inbox and set their preferences.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="employee",
    )
    # What the identity provider knows them by (SCIM, bulletin.interfaces.scim). Empty: never
    # provisioned, and SCIM shows the email as their userName. db_default: the roster's raw
    # INSERT (roster_writes) names only the fields an import sets.
    scim_user_name = models.CharField(
        "SCIM userName", max_length=254, blank=True, default="", db_default="", editable=False
    )
    scim_external_id = models.CharField(
        "SCIM externalId",
        max_length=255,
        blank=True,
        default="",
        db_default="",
        db_index=True,
        editable=False,
    )
    given_name = models.CharField(max_length=100, blank=True, default="", db_default="")
    # BCP 47, canonical ("de", "pt-BR"); "": the organisation's default (BULLETIN_DEFAULT_
    # LANGUAGE). Fan-out picks each person's text by it (bulletin.dispatch.translations).
    language = models.CharField(
        max_length=LONGEST_TAG,
        blank=True,
        default="",
        db_default="",
        validators=[validate_language],
        help_text="BCP 47, e.g. de or pt-BR. Empty: the organisation's default language.",
    )
    family_name = models.CharField(max_length=100, blank=True, default="", db_default="")
    # Set by a SCIM DELETE: the employee is deactivated (never deleted: their deliveries stay)
    # and SCIM answers 404 for them until the provider creates them again.
    scim_deleted_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [
            # audience_of(...).count(), on every view of an announcement ("12,000 people
            # now"): SQLite counts "WHERE active" over this thin index instead of every
            # employee row (measured at 100,000 people: 13.6 ms against 35.7 ms).
            models.Index(fields=["active", "department"], name="employee_audience_idx"),
        ]
        constraints = [
            # RFC 7643 §4.1.1: userName is unique and not case-sensitive.
            models.UniqueConstraint(
                Lower("scim_user_name"),
                condition=~Q(scim_user_name=""),
                name="employee_scim_user_name_uniq",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    def save(self, *args: object, **kwargs: object) -> None:
        self.email = self.email.strip().lower()
        if not self._state.adding and not args and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = self._edited_fields()
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def _edited_fields(self) -> list[str]:
        """Every field a form or an import may change: not what Slack's look-ups found,
        which only dispatch writes (an employee loaded before a look-up and saved after it
        must not write back what was known when it was loaded)."""
        skipped = {*SLACK_REMEMBERED, *self.get_deferred_fields()}
        fields = self._meta.concrete_fields
        return [f.attname for f in fields if not f.primary_key and f.attname not in skipped]


SLACK_REMEMBERED = ("slack_found_id", "slack_found_for", "slack_dm_channel", "slack_dm_user")
