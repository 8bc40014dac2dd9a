"""What a delivery says: its announcement rendered for its recipient, person or place."""

from __future__ import annotations

from bulletin.channels.base import Destination, Message, Recipient
from bulletin.channels.render import render_html, render_text
from bulletin.conf import secret
from bulletin.domain.models import Delivery, Employee, Place


def person(employee: Employee) -> Recipient:
    return Recipient(
        email=employee.email,
        name=employee.name,
        timezone=employee.timezone,
        slack_user_id=employee.slack_user_id,
    )


def place_secret(value: str) -> str:
    """A stored secret, or ``env:NAME`` to read it from NAME or the file NAME_FILE names."""
    return secret(value.removeprefix("env:")) if value.startswith("env:") else value


def destination(place: Place) -> Destination:
    stored = (place.secret, place.previous_secret)
    secrets = tuple(filter(None, (place_secret(value) for value in stored if value)))
    return Destination(name=place.name, target=place.target, secrets=secrets)


def compose(delivery: Delivery) -> Message:
    occurrence = delivery.occurrence
    announcement = occurrence.announcement
    # What this occurrence was planned to say, even if the announcement was edited since.
    content = occurrence.version or announcement
    recipient = person(delivery.employee) if delivery.employee else None
    return Message(
        idempotency_key=delivery.idempotency_key,
        title=content.title,
        text=render_text(content.body, recipient),
        html=render_html(content.body, recipient),
        recipient=recipient,
        place=destination(delivery.place) if delivery.place else None,
        announcement_id=announcement.pk,
        fire_at=occurrence.fire_at,
        requires_ack=announcement.requires_ack,
        delivery_id=delivery.pk,
    )
