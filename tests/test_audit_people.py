"""An announcement's chosen people are audited: named when it is created, and who was added and
who removed when they change, by every interface that can set them: the HR screen, the REST API
and the admin."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from bulletin.domain.models import Announcement, AuditEvent
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def edited(item: Announcement) -> dict[str, Any]:
    return dict(AuditEvent.objects.get(announcement=item, action="edited").detail)


def created_for(item: Announcement) -> list[int]:
    return list(AuditEvent.objects.get(announcement=item, action="created").detail["recipients"])


def test_the_hr_screen_audits_the_people_it_adds_and_removes(ann: Any) -> None:
    first, second, third = factories.employees(3)
    client = logged_in(ann)
    list_of = factories.compose_form
    client.post("/hr/new/", list_of(audience_kind="list", recipients=[first.pk, second.pk]))
    item = Announcement.objects.get()
    assert created_for(item) == [first.pk, second.pk]

    client.post(
        f"/hr/{item.pk}/edit/",
        {**list_of(audience_kind="list", recipients=[second.pk, third.pk]), "action": "save"},
    )

    assert set(item.recipients.all()) == {second, third}
    detail = edited(item)
    assert detail["fields"] == ["recipients"]
    assert (detail["recipients_added"], detail["recipients_removed"]) == ([third.pk], [first.pk])


def test_the_api_audits_the_people_a_patch_adds_and_removes(django_user_model: Any) -> None:
    from bulletin.domain.roles import ANNOUNCER
    from tests.test_api import api_for, user_with_role

    first, second = factories.employees(2)
    api = api_for(user_with_role(django_user_model, "announcer", ANNOUNCER))
    audience = {"kind": "list", "employee_ids": [first.pk]}
    created = api.post("/announcements", factories.api_announcement(audience=audience))
    item = Announcement.objects.get(pk=created.json()["id"])
    assert created_for(item) == [first.pk]

    audience["employee_ids"] = [second.pk]
    assert api.patch(f"/announcements/{item.pk}", {"audience": audience}).status_code == 200

    detail = edited(item)
    assert "recipients" in detail["fields"]
    assert (detail["recipients_added"], detail["recipients_removed"]) == ([second.pk], [first.pk])


def test_the_admin_audits_the_people_it_adds_and_removes(admin_client: Client) -> None:
    from tests.test_admin import announcement_form

    first, second = factories.employees(2)
    form = announcement_form(audience_kind="list", recipients=[first.pk])
    admin_client.post("/admin/bulletin/announcement/add/", form)
    item = Announcement.objects.get()
    assert list(item.recipients.all()) == [first] and created_for(item) == [first.pk]

    form["recipients"] = [second.pk]
    response = admin_client.post(f"/admin/bulletin/announcement/{item.pk}/change/", form)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(item.recipients.all()) == [second]
    detail = edited(item)
    assert (detail["recipients_added"], detail["recipients_removed"]) == ([second.pk], [first.pk])
