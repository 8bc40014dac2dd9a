"""Working hours on the HR screens, through Django's test client on real holiday calendars:
the compose form's checkbox, the schedule panel's "who receives it later and why", the detail
page's held deliveries and "send now regardless", cancelling what still waits, the CSV export.

Deliveries are held the real way: employees in a Location with a working week, an announcement
delivered within working hours, and the planner ticking at a time outside their window.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.test import Client

from bulletin.dispatch.planning import tick
from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    AuditEvent,
    Delivery,
    DeliveryState,
    Employee,
)
from bulletin.domain.records import AuditAction
from tests import factories

pytestmark = pytest.mark.django_db

WEEK = "Mon-Fri 08:00-18:00"
# Thursday 31 October 2024, 10:00 in Pune (04:30 UTC): Diwali in Maharashtra.
DIWALI_10AM = "2024-10-31T10:00"
DIWALI_FIRE = datetime(2024, 10, 31, 4, 30, tzinfo=UTC)
PUNE_LINE = "3 in Pune: Diwali, delivered Fri 1 Nov 08:00 IST"


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def pune(count: int = 3) -> list[Employee]:
    factories.location(
        "Pune", zone="Asia/Kolkata", country="IN", subdivision="MH", working_week=WEEK
    )
    return factories.employees(count, prefix="pune", zone="Asia/Kolkata", location="Pune")


def dublin(count: int = 2) -> list[Employee]:
    factories.location("Dublin", zone="Europe/Dublin", country="IE", working_week=WEEK)
    return factories.employees(count, prefix="dub", zone="Europe/Dublin", location="Dublin")


def tokyo(count: int = 1) -> list[Employee]:
    """People with no location: the default working week, in a zone where 04:30 UTC is 13:30."""
    return factories.employees(count, prefix="tyo", zone="Asia/Tokyo")


def at_diwali(**overrides: Any) -> dict[str, Any]:
    """The schedule panel's parameters: once, 10:00 Pune time on Diwali, email to everyone."""
    params = {
        "schedule_kind": "once",
        "at_local": DIWALI_10AM,
        "timezone": "Asia/Kolkata",
        "audience_kind": "all",
        "channels": "email",
        "working_hours": "on",
    }
    return params | overrides


def panel(client: Client, params: dict[str, Any], now: datetime) -> dict[str, Any]:
    with time_machine.travel(now, tick=False):
        response = client.get("/hr/fire-times/", params)
    assert response.status_code == 200
    return dict(response.json())


# --- Compose ------------------------------------------------------------------------------


def test_the_compose_form_saves_working_hours_and_an_edit_of_it_is_audited(ann: Any) -> None:
    client = logged_in(ann)
    blank = client.get("/hr/new/").content.decode()
    assert "Deliver within each person&#x27;s working hours" in blank
    assert "mandatory announcements never wait" in blank

    response = client.post("/hr/new/", factories.compose_form(action="draft", working_hours="on"))
    assert response.status_code == 302
    item = Announcement.objects.get()
    assert item.working_hours is True
    edit_page = client.get(f"/hr/{item.pk}/edit/").content.decode()
    assert _is_checked(edit_page, "working_hours")

    client.post(f"/hr/{item.pk}/edit/", factories.compose_form(action="save"))
    item.refresh_from_db()
    assert item.working_hours is False
    edited = AuditEvent.objects.filter(announcement=item, action=AuditAction.EDITED).get()
    assert edited.detail["fields"] == ["working_hours"]
    assert "changed working hours" in client.get(f"/hr/{item.pk}/").content.decode()


def _is_checked(html: str, name: str) -> bool:
    start = html.index(f'name="{name}"')
    tag = html[html.rindex("<input", 0, start) : html.index(">", start)]
    return " checked" in tag


def test_the_panel_says_how_many_in_pune_receive_it_later_for_diwali_and_why(ann: Any) -> None:
    pune()
    dublin()
    tokyo()
    data = panel(logged_in(ann), at_diwali(), datetime(2024, 10, 20, tzinfo=UTC))
    assert [fire["local"] for fire in data["fires"]] == ["Thu 31 Oct 2024, 10:00 IST"]
    # 04:30 UTC is before hours in Dublin; in Tokyo it is 13:30 on a working Thursday.
    assert data["waiting"]["lines"] == [
        PUNE_LINE,
        "2 in Dublin: before working hours, delivered Thu 31 Oct 08:00 GMT",
    ]
    assert data["waiting"]["note"] == "Working hours: at the next send 5 people receive it later:"


def test_without_working_hours_the_panel_says_nothing_about_waiting(ann: Any) -> None:
    pune()
    params = at_diwali()
    del params["working_hours"]
    data = panel(logged_in(ann), params, datetime(2024, 10, 20, tzinfo=UTC))
    assert len(data["fires"]) == 1 and data["waiting"] is None


def test_a_mandatory_announcement_says_it_is_sent_at_once_working_hours_or_not(ann: Any) -> None:
    pune()
    data = panel(logged_in(ann), at_diwali(mandatory="on"), datetime(2024, 10, 20, tzinfo=UTC))
    assert data["waiting"] == {
        "note": "Mandatory: sent at once to everyone, working hours or not.",
        "lines": [],
        "people": 0,
    }


def test_the_irish_october_bank_holiday_holds_dublin_and_not_pune_at_the_same_instant(
    ann: Any,
) -> None:
    pune()
    dublin()
    # Monday 28 October 2024, 09:00 in Dublin (GMT since the 27th) = 14:30 in Pune.
    params = at_diwali(
        schedule_kind="cron", repeat="weekdays", time_of_day="09:00", timezone="Europe/Dublin"
    )
    data = panel(logged_in(ann), params, datetime(2024, 10, 27, 12, tzinfo=UTC))
    assert data["fires"][0]["local"] == "Mon 28 Oct 2024, 09:00 GMT"
    assert data["waiting"]["lines"] == [
        "2 in Dublin: October Bank Holiday, delivered Tue 29 Oct 08:00 GMT"
    ]


def test_at_each_recipients_local_time_each_zone_is_judged_at_its_own_next_send(
    ann: Any,
) -> None:
    pune()
    dublin()
    params = at_diwali(per_recipient_zone="on", timezone="")
    data = panel(logged_in(ann), params, datetime(2024, 10, 20, tzinfo=UTC))
    # 10:00 in Dublin on Thursday 31 October is a working hour; 10:00 in Pune is Diwali.
    assert data["waiting"]["lines"] == [PUNE_LINE]
    assert data["waiting"]["people"] == 3
    expected = "Working hours: at the next send in each zone 3 people receive it later:"
    assert data["waiting"]["note"] == expected


def test_when_nobody_waits_the_panel_says_everyone_is_within_working_hours(ann: Any) -> None:
    tokyo(2)
    data = panel(logged_in(ann), at_diwali(), datetime(2024, 10, 20, tzinfo=UTC))
    assert data["waiting"] == {
        "note": "Working hours: at the next send everyone in this audience is within theirs.",
        "lines": [],
        "people": 0,
    }


def test_a_list_of_chosen_people_counts_only_them(ann: Any) -> None:
    chosen = pune()[:2] + dublin()[:1]
    params = at_diwali(audience_kind="list", recipients=[p.pk for p in chosen])
    data = panel(logged_in(ann), params, datetime(2024, 10, 20, tzinfo=UTC))
    assert data["waiting"]["lines"] == [
        "2 in Pune: Diwali, delivered Fri 1 Nov 08:00 IST",
        "1 in Dublin: before working hours, delivered Thu 31 Oct 08:00 GMT",
    ]


def test_a_list_at_each_recipients_local_time_holds_only_the_pune_people(ann: Any) -> None:
    chosen = pune()[:2] + dublin()[:1]
    params = at_diwali(
        audience_kind="list", recipients=[p.pk for p in chosen], per_recipient_zone="on"
    )
    data = panel(logged_in(ann), params, datetime(2024, 10, 20, tzinfo=UTC))
    assert data["waiting"]["lines"] == ["2 in Pune: Diwali, delivered Fri 1 Nov 08:00 IST"]


def test_a_scheduled_announcements_page_says_who_its_next_send_reaches_later(ann: Any) -> None:
    pune()
    tokyo()
    created = datetime(2024, 10, 20, tzinfo=UTC)
    with time_machine.travel(created, tick=False):
        item = factories.announcement(
            now=created, at=DIWALI_10AM, zone="Asia/Kolkata", working_hours=True
        )
        html = logged_in(ann).get(f"/hr/{item.pk}/").content.decode()
    box = html[html.index('id="next-waiting"') :]
    box = box[: box.index("</div>")]
    assert "at the next send 3 people receive it later" in box
    assert f"<li>{PUNE_LINE}</li>" in box


# --- After the send: held deliveries --------------------------------------------------------


def held_on_diwali(**fields: Any) -> Announcement:
    """Three Pune people held for Diwali, one Tokyo person pending: planned and fanned out by
    the planner at 10:01 Pune time."""
    pune()
    tokyo()
    created = datetime(2024, 10, 20, tzinfo=UTC)
    with time_machine.travel(created, tick=False):
        item = factories.announcement(
            now=created, at=DIWALI_10AM, zone="Asia/Kolkata", working_hours=True, **fields
        )
    with time_machine.travel(DIWALI_FIRE.replace(minute=31), tick=False):
        tick()
    return item


def test_the_detail_page_counts_held_apart_from_pending_with_the_reasons(ann: Any) -> None:
    item = held_on_diwali()
    assert Delivery.objects.filter(state=DeliveryState.HELD).count() == 3
    html = logged_in(ann).get(f"/hr/{item.pk}/").content.decode()
    assert '<span id="held-count">3</span> deliveries held for working hours' in html
    assert '<span id="pending-count">1</span> pending' in html
    assert "3 in Pune held until Fri 1 Nov 08:00 IST — Diwali" in html
    assert '<td class="held">3</td>' in html
    assert "Send now regardless" in html
    dashboard = logged_in(ann).get("/hr/").content.decode()
    assert '<span class="count count-held">3 held</span>' in dashboard


def test_a_read_only_hr_user_sees_the_held_count_but_cannot_send_now(april: Any) -> None:
    item = held_on_diwali()
    client = logged_in(april)
    html = client.get(f"/hr/{item.pk}/").content.decode()
    assert '<span id="held-count">3</span>' in html and "Send now regardless" not in html
    response = client.post(f"/hr/{item.pk}/send-now/")
    assert response.status_code == 403
    assert "schedule_announcement" in response.content.decode()
    assert Delivery.objects.filter(state=DeliveryState.HELD).count() == 3
    assert not AuditEvent.objects.filter(action=AuditAction.RELEASED).exists()


def test_a_scheduler_sends_the_held_deliveries_now_regardless(ann: Any) -> None:
    item = held_on_diwali()
    client = logged_in(ann)
    response = client.post(f"/hr/{item.pk}/send-now/", follow=True)
    assert "3 deliveries sent now regardless of working hours." in response.content.decode()
    assert Delivery.objects.filter(state=DeliveryState.PENDING).count() == 4
    assert not Delivery.objects.filter(state=DeliveryState.HELD).exists()
    released = AuditEvent.objects.get(action=AuditAction.RELEASED)
    assert released.actor == ann and released.detail["deliveries"] == 3
    html = client.get(f"/hr/{item.pk}/").content.decode()
    assert "3 held deliveries sent now regardless of working hours" in html  # activity
    assert 'id="held-count"' not in html
    again = client.post(f"/hr/{item.pk}/send-now/", follow=True)
    assert "Nothing was waiting for working hours." in again.content.decode()


def test_send_now_is_a_post_only(ann: Any) -> None:
    item = held_on_diwali()
    assert logged_in(ann).get(f"/hr/{item.pk}/send-now/").status_code == 405
    assert Delivery.objects.filter(state=DeliveryState.HELD).count() == 3


def test_a_finished_one_off_with_held_deliveries_can_still_be_cancelled(ann: Any) -> None:
    item = held_on_diwali()
    item.refresh_from_db()
    assert item.status == AnnouncementStatus.FINISHED
    client = logged_in(ann)
    assert "Cancel…" in client.get(f"/hr/{item.pk}/").content.decode()
    confirm = client.get(f"/hr/{item.pk}/cancel/").content.decode()
    assert "<strong>3</strong> deliveries held for working hours are withdrawn" in confirm
    assert "<strong>1</strong> delivery still waiting to go out is withdrawn" in confirm
    client.post(f"/hr/{item.pk}/cancel/", {"confirm": "yes"})
    item.refresh_from_db()
    assert item.status == AnnouncementStatus.CANCELLED
    # What had not started sending is withdrawn: the held ones and Tokyo's pending one.
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.SKIPPED}


def test_a_finished_one_off_with_nothing_held_offers_no_cancel(ann: Any) -> None:
    item = held_on_diwali()
    logged_in(ann).post(f"/hr/{item.pk}/send-now/")
    assert "Cancel…" not in logged_in(ann).get(f"/hr/{item.pk}/").content.decode()


def test_the_csv_export_ends_with_the_hold_reason(ann: Any) -> None:
    item = held_on_diwali()
    response = logged_in(ann).get(f"/hr/{item.pk}/deliveries.csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][-1] == "hold_reason"
    by_state = {(row[3], row[-1]) for row in rows[1:]}
    assert by_state == {("held", "Diwali"), ("pending", "")}


def test_the_people_search_names_where_each_person_works(ann: Any) -> None:
    Employee.objects.filter(pk__in=[p.pk for p in pune(1)]).update(department="Finance")
    found = logged_in(ann).get("/hr/people/", {"q": "pune0"}).json()["results"]
    assert [person["where"] for person in found] == ["Finance · Pune"]
