"""The in-app inbox: an announcement becomes a row in the employee's inbox.

The only channel whose receiver is Bulletin's own database, so dispatch writes the inbox item
and marks the delivery sent in one transaction (``transactional``), and the item is unique on
its delivery: exactly once by construction, and safe to retry (``deduplicates``).
"""

from __future__ import annotations

from django.utils import timezone

from bulletin.channels.base import Message, PermanentError, Transport
from bulletin.domain.inbox import InboxItem
from bulletin.domain.models import Delivery


class InboxTransport(Transport):
    name = "inapp"
    deduplicates = True
    transactional = True

    def send(self, message: Message) -> None:
        employee_id = (
            Delivery.objects.filter(pk=message.delivery_id)
            .values_list("employee_id", flat=True)
            .first()
        )
        if employee_id is None:
            raise PermanentError("the in-app inbox needs a person as the recipient")
        InboxItem.objects.get_or_create(
            delivery_id=message.delivery_id,
            defaults={
                "employee_id": employee_id,
                "announcement_id": message.announcement_id,
                "title": message.title,
                "html": message.html,
                "requires_ack": message.requires_ack,
                "created_at": message.fire_at or timezone.now(),
            },
        )
