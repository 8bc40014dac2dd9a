"""Deliveries, read-only: what was (or will be) sent to whom, on which channel, and how it went."""

from typing import Any

from django.http import HttpRequest
from ninja import Router
from ninja.pagination import paginate

from bulletin.domain.models import Channel, Delivery, DeliveryState
from bulletin.interfaces.api.auth import DELIVERIES_READ, needs
from bulletin.interfaces.api.common import Pages, RowId
from bulletin.interfaces.api.outputs import DeliveryOut
from bulletin.interfaces.api.schemas import replies

router = Router(tags=["deliveries"])


@router.get(
    "", response=replies({200: list[DeliveryOut]}), **needs(DELIVERIES_READ, "view_delivery")
)
@paginate(Pages)
def list_deliveries(
    request: HttpRequest,
    announcement_id: RowId | None = None,
    occurrence_id: RowId | None = None,
    employee_id: RowId | None = None,
    state: DeliveryState | None = None,
    channel: Channel | None = None,
) -> Any:
    """Deliveries in the order they were planned; every filter is optional."""
    filters = {
        "occurrence__announcement_id": announcement_id,
        "occurrence_id": occurrence_id,
        "employee_id": employee_id,
        "state": state,
        "channel": channel,
    }
    rows = Delivery.objects.select_related("occurrence", "employee", "place").order_by("id")
    return rows.filter(**{name: value for name, value in filters.items() if value is not None})
