"""The Django admin as HR uses it: employees, announcements with their next fire times, and a
read-only view of occurrences and deliveries with counts by state."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from bulletin.channels.email import message_id
from bulletin.domain.models import Announcement, AnnouncementStatus, Delivery
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def hr(admin_client: Client) -> Client:
    return admin_client


def announcement_form(**overrides: Any) -> dict[str, Any]:
    form = {
        "title": "All-hands",
        "body": "See you there, {{ first_name }}.",
        "audience_kind": "all",
        "audience_values": "",
        "channels": ["email"],
        "schedule_kind": "cron",
        "cron": "0 9 * * 1-5",
        "at_local": "",
        "timezone": "Europe/London",
        "misfire_grace": "01:00:00",
    }
    form.update(overrides)
    return form


def run_action(hr: Client, action: str, item: Announcement) -> str:
    response = hr.post(
        "/admin/bulletin/announcement/",
        {"action": action, "_selected_action": [item.pk]},
        follow=True,
    )
    return response.content.decode()


def test_an_announcement_saved_in_the_admin_is_a_draft_until_scheduled(hr: Client) -> None:
    response = hr.post("/admin/bulletin/announcement/add/", announcement_form())
    assert response.status_code == 302, response.content.decode()[:2000]
    item = Announcement.objects.get()
    assert item.status == AnnouncementStatus.DRAFT and item.next_fire_at is None
    assert list(item.audit.values_list("action", flat=True)) == ["created"]
    run_action(hr, "schedule_selected", item)
    item.refresh_from_db()
    assert item.status == AnnouncementStatus.SCHEDULED and item.next_fire_at is not None
    page = hr.get(f"/admin/bulletin/announcement/{item.pk}/change/").content.decode()
    assert "Next 10 fire times" in page
    assert page.count("(20") >= 10  # ten UTC instants listed


def test_a_one_off_time_in_the_spring_gap_is_refused_naming_both_choices(hr: Client) -> None:
    form = announcement_form(
        schedule_kind="once", cron="", at_local="2027-03-14T02:30", timezone="America/New_York"
    )
    page = hr.post("/admin/bulletin/announcement/add/", form).content.decode()
    assert "does not exist" in page and "-05:00" in page and "-04:00" in page
    assert Announcement.objects.count() == 0


def test_an_invalid_cron_expression_is_refused_on_its_field(hr: Client) -> None:
    page = hr.post("/admin/bulletin/announcement/add/", announcement_form(cron="61 * * * *"))
    assert "invalid cron expression" in page.content.decode()
    assert Announcement.objects.count() == 0


def test_several_departments_are_entered_one_per_line_and_shown_back_that_way(
    hr: Client,
) -> None:
    form = announcement_form(audience_kind="department", audience_values=" Sales\r\nSupport\n\n")
    response = hr.post("/admin/bulletin/announcement/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    item = Announcement.objects.get()
    assert (item.audience_kind, item.audience_values) == ("department", ["Sales", "Support"])
    page = hr.get(f"/admin/bulletin/announcement/{item.pk}/change/")
    field = page.context["adminform"].form["audience_values"]
    assert field.value() == "Sales\nSupport"


def test_a_department_audience_without_a_name_is_refused_on_its_field(hr: Client) -> None:
    form = announcement_form(audience_kind="department", audience_values="  \n ")
    response = hr.post("/admin/bulletin/announcement/add/", form)
    errors = response.context["adminform"].form.errors
    assert errors["audience_values"] == ["name at least one department this announcement is for"]
    assert Announcement.objects.count() == 0


def test_a_title_with_a_line_break_is_refused(hr: Client) -> None:
    page = hr.post("/admin/bulletin/announcement/add/", announcement_form(title="a\nb"))
    assert "single line" in page.content.decode()
    assert Announcement.objects.count() == 0


def test_deliveries_are_read_only_and_counted_by_state(hr: Client) -> None:
    factories.employees(3)
    factories.fired()
    factories.put(Delivery.objects.filter(pk=Delivery.objects.first().pk), state="unknown")  # type: ignore[union-attr]
    page = hr.get("/admin/bulletin/delivery/").content.decode()
    assert "Pending (2)" in page and "Unknown (interrupted mid-send) (1)" in page
    assert hr.get("/admin/bulletin/delivery/add/").status_code == 403
    occurrences = hr.get("/admin/bulletin/occurrence/").content.decode()
    assert "Fanned out (1)" in occurrences


def test_a_delivery_page_shows_the_message_id_the_mail_server_logged(hr: Client) -> None:
    factories.employees(1)
    factories.fired()
    delivery = Delivery.objects.get()
    page = hr.get(f"/admin/bulletin/delivery/{delivery.pk}/change/").content.decode()
    assert escape(message_id(delivery.idempotency_key)) in page


def test_pausing_from_the_list_stops_planning(hr: Client) -> None:
    hr.post("/admin/bulletin/announcement/add/", announcement_form())
    item = Announcement.objects.get()
    run_action(hr, "schedule_selected", item)
    run_action(hr, "pause_selected", item)
    item.refresh_from_db()
    assert item.status == AnnouncementStatus.PAUSED and item.next_fire_at is None


def test_the_admin_cannot_bypass_approval_or_approve_its_own_work(
    hr: Client, settings: Any
) -> None:
    from dataclasses import replace

    from bulletin import conf

    settings.BULLETIN = replace(conf.load({}), require_approval=True)
    hr.post("/admin/bulletin/announcement/add/", announcement_form())
    item = Announcement.objects.get()
    run_action(hr, "schedule_selected", item)
    item.refresh_from_db()
    assert item.status == AnnouncementStatus.PENDING_APPROVAL
    page = run_action(hr, "approve_selected", item)
    assert "you cannot approve an announcement you wrote" in page
    item.refresh_from_db()
    assert item.status == AnnouncementStatus.PENDING_APPROVAL


def test_employee_list_searches_by_email(hr: Client) -> None:
    factories.employees(2)
    page = hr.get("/admin/bulletin/employee/", {"q": "person1@"}).content.decode()
    assert "person1@example.com" in page and "person0@example.com" not in page


def test_the_announcement_list_shows_inbox_read_and_acknowledgement_rates(hr: Client) -> None:
    from bulletin.dispatch.sender import Dispatcher
    from bulletin.domain.models import InboxItem

    factories.employees(4)
    factories.fired(channels=("inapp",), requires_ack=True)
    Dispatcher().run_until_idle()
    items = list(InboxItem.objects.order_by("pk"))
    now = timezone.now()
    InboxItem.objects.filter(pk__in=[i.pk for i in items[:2]]).update(read_at=now)
    InboxItem.objects.filter(pk=items[0].pk).update(acknowledged_at=now)
    page = hr.get("/admin/bulletin/announcement/").content.decode()
    assert "50% read, 25% acknowledged" in page
