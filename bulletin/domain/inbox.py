"""The in-app inbox: what an employee finds when they sign in to read their announcements."""

from __future__ import annotations

from django.db import models

from bulletin.domain.models import Announcement, Delivery
from bulletin.domain.people import Employee


class InboxItem(models.Model):
    """An announcement in an employee's in-app inbox. Written in the same transaction that
    marks its delivery sent, and unique on that delivery: exactly once by construction."""

    delivery = models.OneToOneField(Delivery, on_delete=models.CASCADE, related_name="inbox_item")
    employee = models.ForeignKey(Employee, on_delete=models.CASCADE, related_name="inbox")
    announcement = models.ForeignKey(Announcement, on_delete=models.CASCADE, related_name="+")
    title = models.CharField(max_length=200)
    html = models.TextField()
    requires_ack = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "inbox item"
        verbose_name_plural = "inbox items"
        ordering = ["-created_at", "-id"]
        indexes = [
            # inbox page: employee=? ORDER BY created_at DESC
            models.Index(fields=["employee", "-created_at"], name="inbox_employee_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.title} for {self.employee_id}"
