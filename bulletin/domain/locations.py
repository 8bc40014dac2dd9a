"""Where employees work: a location's zone, public-holiday region and working week.

Employees refer to a location by its name (the name is the key an audience, the CSV and the
API use), so a location is created or matched by name wherever employees are written.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from bulletin.domain.people import validate_single_line, validate_zone
from bulletin.scheduling.working import (
    Region,
    RegionError,
    WorkingWeek,
    WorkingWeekError,
    check_region,
)


def validate_working_week(value: str) -> None:
    try:
        WorkingWeek.parse(value)
    except WorkingWeekError as exc:
        raise ValidationError(str(exc)) from None


def default_working_week() -> str:
    from bulletin.conf import options

    return options().working_week


class Location(models.Model):
    name = models.CharField(max_length=100, unique=True, validators=[validate_single_line])
    timezone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_zone],
        help_text="The zone of employees here whose own zone is not given.",
    )
    country = models.CharField(
        max_length=2, blank=True, help_text="ISO 3166-1 alpha-2 code, for public holidays."
    )
    subdivision = models.CharField(
        max_length=10, blank=True, help_text="A state or region code (e.g. MH, ENG), if any."
    )
    working_week = models.CharField(
        max_length=60,
        default=default_working_week,
        validators=[validate_working_week],
        help_text="Days and hours on the employee's own clock, e.g. Mon-Fri 08:00-18:00.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.country = self.country.strip().upper()
        self.subdivision = self.subdivision.strip().upper()
        try:
            check_region(self.country, self.subdivision)
        except RegionError as exc:
            raise ValidationError({exc.field: str(exc)}) from None

    @property
    def region(self) -> Region | None:
        return Region(self.country, self.subdivision) if self.country else None

    @property
    def week(self) -> WorkingWeek:
        return WorkingWeek.parse(self.working_week)
