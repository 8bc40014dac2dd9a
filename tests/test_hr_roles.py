"""Every role against every state-changing HR action: allowed ones change the announcement,
forbidden ones get a 403 and change nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.test import Client

from bulletin import conf
from bulletin.dispatch import lifecycle
from bulletin.dispatch.planning import tick
from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    Delivery,
    DeliveryState,
    ScheduleKind,
)
from bulletin.domain.roles import ADMINISTRATOR, ANNOUNCER, APPROVER, EMPLOYEE
from tests import factories

pytestmark = pytest.mark.django_db

ROLES = (EMPLOYEE, ANNOUNCER, APPROVER, ADMINISTRATOR)


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def user_with(django_user_model: Any, name: str, role: str) -> Any:
    return factories.person(name, role)


def written_by(author: Any, status: str) -> Announcement:
    item = lifecycle.create(
        Announcement(
            title="Canteen reopens",
            body="On **Monday**.",
            channels=["email"],
            schedule_kind=ScheduleKind.CRON,
            cron="0 9 * * *",
            timezone="Europe/London",
        ),
        author,
    )
    if status != AnnouncementStatus.DRAFT:
        lifecycle.submit(item, author)
    if status == AnnouncementStatus.PAUSED:
        lifecycle.pause(item, author)
    return item


# action: (status it starts in, POST data, who may, what "it happened" looks like)
ACTIONS: dict[str, tuple[str, dict[str, str], set[str], Callable[[Announcement], bool]]] = {
    "submit": (
        AnnouncementStatus.DRAFT,
        {},
        {ANNOUNCER, ADMINISTRATOR},
        lambda a: a.status == AnnouncementStatus.SCHEDULED,
    ),
    "pause": (
        AnnouncementStatus.SCHEDULED,
        {},
        {ANNOUNCER, ADMINISTRATOR},
        lambda a: a.status == AnnouncementStatus.PAUSED,
    ),
    "resume": (
        AnnouncementStatus.PAUSED,
        {},
        {ANNOUNCER, ADMINISTRATOR},
        lambda a: a.status == AnnouncementStatus.SCHEDULED,
    ),
    "cancel": (
        AnnouncementStatus.SCHEDULED,
        {"confirm": "yes"},
        {ANNOUNCER, ADMINISTRATOR},
        lambda a: a.status == AnnouncementStatus.CANCELLED,
    ),
    "test": (
        AnnouncementStatus.DRAFT,
        {},
        {ANNOUNCER, ADMINISTRATOR},
        lambda a: a.audit.filter(action="test_sent").exists(),
    ),
    "approve": (
        AnnouncementStatus.PENDING_APPROVAL,
        {},
        {APPROVER, ADMINISTRATOR},
        lambda a: a.status == AnnouncementStatus.SCHEDULED,
    ),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_each_role_may_do_exactly_its_actions(
    django_user_model: Any, settings: Any, role: str, action: str
) -> None:
    start, data, allowed, happened = ACTIONS[action]
    if start == AnnouncementStatus.PENDING_APPROVAL:
        settings.BULLETIN = replace(conf.load({}), require_approval=True)
    author = user_with(django_user_model, "author", ANNOUNCER)
    item = written_by(author, start)
    actor = user_with(django_user_model, "actor", role)
    client = Client()
    client.force_login(actor)

    response = client.post(f"/hr/{item.pk}/{action}/", data)

    item.refresh_from_db()
    if role in allowed:
        assert response.status_code in (200, 302), response.content[:500]
        assert happened(item)
    else:
        assert response.status_code == 403
        assert not happened(item)
        assert item.status == start


@pytest.mark.parametrize("role", ROLES)
def test_only_announcers_and_administrators_retry_failed_deliveries(
    django_user_model: Any, role: str
) -> None:
    factories.employees(2)
    item = factories.fired()
    factories.put(Delivery.objects, state=DeliveryState.FAILED)
    actor = user_with(django_user_model, "actor", role)
    client = Client()
    client.force_login(actor)

    response = client.post(f"/hr/{item.pk}/retry/", {})

    retried = not Delivery.objects.filter(state=DeliveryState.FAILED).exists()
    if role in (ANNOUNCER, ADMINISTRATOR):
        assert response.status_code in (200, 302) and retried
    else:
        assert response.status_code == 403 and not retried


def held_over_the_weekend() -> Announcement:
    """Two Leeds people whose Saturday-noon delivery waits for Monday 08:00."""
    factories.location("Leeds", zone="Europe/London", working_week="Mon-Fri 08:00-18:00")
    factories.employees(2, location="Leeds")
    friday = datetime(2024, 11, 1, 12, tzinfo=UTC)
    with time_machine.travel(friday, tick=False):
        item = factories.announcement(now=friday, cron="0 12 * * 6", working_hours=True)
    with time_machine.travel(datetime(2024, 11, 2, 12, 0, 30, tzinfo=UTC), tick=False):
        tick()
    assert Delivery.objects.filter(state=DeliveryState.HELD).count() == 2
    return item


@pytest.mark.parametrize("role", ROLES)
def test_only_announcers_and_administrators_send_held_deliveries_now_regardless(
    django_user_model: Any, role: str
) -> None:
    item = held_over_the_weekend()
    actor = user_with(django_user_model, "actor", role)
    client = Client()
    client.force_login(actor)

    response = client.post(f"/hr/{item.pk}/send-now/", {})

    released = not Delivery.objects.filter(state=DeliveryState.HELD).exists()
    if role in (ANNOUNCER, ADMINISTRATOR):
        assert response.status_code == 302 and released
        assert item.audit.filter(action="released", actor=actor).exists()
    else:
        assert response.status_code == 403 and not released
        assert not item.audit.filter(action="released").exists()
