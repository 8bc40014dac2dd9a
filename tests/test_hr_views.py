"""The HR screens through Django's test client: every screen for every role, the compose form's
checks, the live JSON endpoints, approval, retry, CSV export and CSV import."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from bulletin.dispatch import lifecycle
from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    AuditEvent,
    Delivery,
    DeliveryState,
    Employee,
    Location,
    Occurrence,
    Place,
    ScheduleKind,
)
from bulletin.domain.roles import ANNOUNCER, APPROVER
from bulletin.interfaces.hr.forms import AnnouncementForm
from tests import factories
from tests.harness import SmtpSink

pytestmark = pytest.mark.django_db


# --- people and helpers -----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def person(django_user_model: Any, name: str, *roles: str) -> Any:
    return factories.person(name, *roles)


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


compose_data = factories.compose_form


def draft(by: Any, **fields: Any) -> Announcement:
    item = Announcement(
        title=fields.pop("title", "Canteen reopens"),
        body=fields.pop("body", "The canteen reopens on **Monday**."),
        channels=["email"],
        schedule_kind=ScheduleKind.CRON,
        cron=fields.pop("cron", "0 9 * * *"),
        timezone="Europe/London",
        **fields,
    )
    return lifecycle.create(item, by)


def page(response: Any) -> str:
    return str(response.content.decode())


# --- access -----------------------------------------------------------------------------------


def test_an_anonymous_visitor_is_sent_to_the_login_page() -> None:
    response = Client().get("/hr/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/hr/")


def hr_urls(item: Announcement) -> list[str]:
    return [
        "/hr/",
        "/hr/new/",
        f"/hr/{item.pk}/",
        f"/hr/{item.pk}/edit/",
        f"/hr/{item.pk}/deliveries.csv",
        f"/hr/{item.pk}/cancel/",
        f"/hr/{item.pk}/retry/unknown/",
        "/hr/employees/import/",
        "/hr/audience/",
        "/hr/fire-times/",
        "/hr/people/?q=an",
    ]


def test_an_employee_gets_a_403_page_on_every_hr_screen(ann: Any, eve: Any) -> None:
    item = draft(ann)
    client = logged_in(eve)
    for url in hr_urls(item):
        response = client.get(url)
        assert response.status_code == 403, url
        if not url.startswith(("/hr/audience", "/hr/fire", "/hr/people")):
            assert "You can\u2019t do that here" in page(response), url
    for url in ("/hr/preview/", f"/hr/{item.pk}/pause/", f"/hr/{item.pk}/approve/"):
        assert client.post(url, {"body": "x"}).status_code == 403, url
    assert Announcement.objects.get().status == AnnouncementStatus.DRAFT


def test_an_announcer_sees_every_screen_except_the_import(ann: Any) -> None:
    item = draft(ann)
    client = logged_in(ann)
    for url in hr_urls(item):
        expected = 403 if url == "/hr/employees/import/" else 200
        assert client.get(url).status_code == expected, url


def test_an_approver_sees_announcements_but_cannot_compose_or_edit(ann: Any, april: Any) -> None:
    item = draft(ann)
    client = logged_in(april)
    assert client.get("/hr/").status_code == 200
    assert client.get(f"/hr/{item.pk}/").status_code == 200
    assert "New announcement" not in page(client.get("/hr/"))
    assert client.get("/hr/new/").status_code == 403
    assert client.get(f"/hr/{item.pk}/edit/").status_code == 403
    assert client.post("/hr/new/", compose_data()).status_code == 403
    assert Announcement.objects.count() == 1


def test_state_changes_refuse_get_requests(ann: Any) -> None:
    item = draft(ann)
    client = logged_in(ann)
    for action in ("submit", "approve", "pause", "resume", "retry", "test"):
        assert client.get(f"/hr/{item.pk}/{action}/").status_code == 405, action


def test_a_post_without_its_csrf_token_is_refused(ann: Any) -> None:
    item = draft(ann)
    client = Client(enforce_csrf_checks=True)
    client.force_login(ann)
    assert client.post(f"/hr/{item.pk}/submit/").status_code == 403
    assert client.post("/hr/new/", compose_data()).status_code == 403
    assert Announcement.objects.get().status == AnnouncementStatus.DRAFT


# --- dashboard --------------------------------------------------------------------------------


def test_the_dashboard_groups_announcements_by_status_with_next_send_and_counts(ann: Any) -> None:
    factories.employees(3)
    sent = factories.fired(title="Sent weekly")
    factories.put(Delivery.objects.filter(occurrence__announcement=sent), state=DeliveryState.SENT)
    draft(ann, title="Still a draft")
    paused = draft(ann, title="On hold")
    lifecycle.submit(paused, ann)
    lifecycle.pause(paused, ann)
    html = page(logged_in(ann).get("/hr/"))
    for heading in ("Drafts", "Waiting for approval", "Scheduled", "Paused", "Finished"):
        assert heading in html
    assert "New announcement" in html
    assert html.index("Still a draft") < html.index("Sent weekly") < html.index("On hold")
    assert "3 sent" in html


def test_one_status_of_the_dashboard_pages_through_all_of_it_keeping_the_status(
    ann: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bulletin.interfaces.hr import views

    monkeypatch.setattr(views, "PAGE_SIZE", 1)
    for title in ("First draft", "Second draft", "Third draft"):
        draft(ann, title=title)
    html = page(logged_in(ann).get("/hr/?status=draft&page=2"))
    assert '<a href="?status=draft&amp;page=1" rel="prev">Previous</a>' in html
    assert '<a href="?status=draft&amp;page=3" rel="next">Next</a>' in html
    assert "Page 2 of 3" in html
    # Newest first: the second of three on the second page, alone.
    assert "Second draft" in html and "First draft" not in html and "Third draft" not in html


def test_titles_are_escaped_everywhere(ann: Any) -> None:
    item = draft(ann, title="<script>alert(1)</script> News", body="<img src=x onerror=alert(1)>")
    client = logged_in(ann)
    for url in ("/hr/", f"/hr/{item.pk}/", f"/hr/{item.pk}/edit/"):
        html = page(client.get(url))
        assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html, url
        assert "<img src=x" not in html, url


# --- compose ----------------------------------------------------------------------------------


def test_an_announcer_composes_and_schedules_it_with_the_friendly_builder(ann: Any) -> None:
    client = logged_in(ann)
    response = client.post("/hr/new/", compose_data())
    item = Announcement.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/hr/{item.pk}/"
    assert item.status == AnnouncementStatus.SCHEDULED
    assert (item.cron, item.timezone, item.created_by) == ("0 9 * * 1-5", "Europe/London", ann)
    assert item.next_fire_at is not None and item.next_fire_at.weekday() < 5
    detail = page(client.get(response["Location"]))
    assert "Scheduled. First send:" in detail and "Every weekday at 09:00" in detail


@pytest.mark.parametrize(
    ("builder", "cron"),
    [
        ({"repeat": "daily", "time_of_day": "07:30"}, "30 7 * * *"),
        ({"repeat": "weekly", "weekdays": ["1", "4"], "time_of_day": "10:00"}, "0 10 * * 1,4"),
        ({"repeat": "monthly", "month_day": "15", "time_of_day": "12:05"}, "5 12 15 * *"),
        ({"repeat": "custom", "cron": "*/30  8-17 * * 1-5"}, "*/30 8-17 * * 1-5"),
    ],
)
def test_each_builder_choice_writes_its_cron_expression(
    ann: Any, builder: dict[str, Any], cron: str
) -> None:
    logged_in(ann).post("/hr/new/", compose_data(**builder))
    assert Announcement.objects.get().cron == cron


def test_a_bad_cron_expression_is_shown_on_its_field_and_nothing_is_written(ann: Any) -> None:
    response = logged_in(ann).post(
        "/hr/new/", compose_data(repeat="custom", cron="61 * * * *", action="draft")
    )
    assert response.status_code == 400
    html = page(response)
    assert "invalid cron expression" in html.lower()
    field = html[html.index('id="id_cron"') :]
    assert 'class="field-error"' in field[: field.index("</div>")]
    assert Announcement.objects.count() == 0 and AuditEvent.objects.count() == 0


def test_a_department_audience_needs_a_department(ann: Any) -> None:
    factories.employees(2, department="Sales")
    response = logged_in(ann).post("/hr/new/", compose_data(audience_kind="department"))
    assert response.status_code == 400
    assert "Choose at least one department." in page(response)
    assert "Sales (2)" in page(response)  # the choices come from the employees table
    logged_in(ann).post("/hr/new/", compose_data(audience_kind="department", department="Sales"))
    item = Announcement.objects.get()
    assert (item.audience_kind, item.audience_values) == ("department", ["Sales"])


def test_the_compose_form_saves_two_departments_and_shows_them_chosen_on_edit(ann: Any) -> None:
    factories.employees(2, prefix="s", department="Sales")
    factories.employees(1, prefix="t", department="Support")
    factories.employees(1, prefix="e", department="Eng")
    client = logged_in(ann)
    data = compose_data(audience_kind="department", department=["Sales", "Support"])
    response = client.post("/hr/new/", data)
    assert response.status_code == 302, page(response)[:2000]
    item = Announcement.objects.get()
    assert (item.audience_kind, item.audience_values) == ("department", ["Sales", "Support"])
    assert item.recipients.count() == 0  # a rule, not a list of people

    detail = page(client.get(f"/hr/{item.pk}/"))
    assert "Departments: Sales, Support" in detail
    assert "3 people" in detail
    html = page(client.get(f"/hr/{item.pk}/edit/"))
    select = html[html.index('id="id_department"') : html.index("</select>")]
    assert 'value="Sales" selected' in select and 'value="Support" selected' in select
    assert 'value="Eng" selected' not in select and "multiple" in select


def test_a_saved_department_nobody_is_in_now_stays_chosen_on_edit(ann: Any) -> None:
    factories.employees(1, department="Sales")
    item = draft(ann, audience_kind="department", audience_values=["Sales", "Closed"])
    html = page(logged_in(ann).get(f"/hr/{item.pk}/edit/"))
    assert '<option value="Closed" selected>Closed (nobody there now)</option>' in html
    unchanged = compose_data(audience_kind="department", department=["Closed", "Sales"])
    unchanged.update(action="save", body=item.body, repeat="custom", cron="0 9 * * *")
    response = logged_in(ann).post(f"/hr/{item.pk}/edit/", unchanged, follow=True)
    assert "Nothing changed." in page(response)  # the order of names is no change
    item.refresh_from_db()
    assert item.audience_values == ["Sales", "Closed"]


def test_a_service_error_on_audience_values_is_shown_on_the_location_field() -> None:
    form = AnnouncementForm(compose_data(audience_kind="location"))
    form.is_valid()
    message = "name at least one location this announcement is for"
    form.add_service_errors(ValidationError({"audience_values": [message]}))
    assert form.errors["location"][-1] == "Name at least one location this announcement is for."


def test_chosen_people_are_saved_as_the_explicit_recipient_list(ann: Any) -> None:
    people = factories.employees(3)
    data = compose_data(audience_kind="list", recipients=[people[0].pk, people[2].pk])
    logged_in(ann).post("/hr/new/", data)
    item = Announcement.objects.get()
    assert set(item.recipients.all()) == {people[0], people[2]}


def test_a_service_error_is_shown_next_to_its_field(ann: Any) -> None:
    response = logged_in(ann).post("/hr/new/", compose_data(channels=[]))
    assert response.status_code == 400
    html = page(response)
    assert "Choose at least one channel or place." in html
    assert Announcement.objects.count() == 0


def test_a_zone_typed_by_hand_is_accepted_and_a_misspelt_one_is_refused(ann: Any) -> None:
    client = logged_in(ann)
    bad = client.post("/hr/new/", compose_data(timezone="other", timezone_other="Asia/Katmandoo"))
    assert bad.status_code == 400
    assert "“Asia/Katmandoo” is not a time zone Bulletin knows" in page(bad)
    client.post("/hr/new/", compose_data(timezone="other", timezone_other="Asia/Kathmandu"))
    assert Announcement.objects.get().timezone == "Asia/Kathmandu"


def test_places_with_each_recipients_own_zone_are_refused_on_the_places_field(ann: Any) -> None:
    place = Place.objects.create(name="#general", channel="slack", target="C1")
    data = compose_data(per_recipient_zone="on", places=[place.pk])
    response = logged_in(ann).post("/hr/new/", data)
    assert response.status_code == 400
    html = page(response)
    places = html[html.index("And posted once in") :]
    assert "Places have no time zone of their own" in places[: places.index("</fieldset>")]
    assert Announcement.objects.count() == 0


def test_each_recipients_local_time_shows_fire_times_for_the_audiences_main_zone(
    ann: Any,
) -> None:
    factories.employees(2, prefix="ny", zone="America/New_York")
    factories.employees(1, prefix="ldn", zone="Europe/London")
    params = {
        "schedule_kind": "cron",
        "repeat": "daily",
        "time_of_day": "09:00",
        "per_recipient_zone": "on",
        "audience_kind": "all",
    }
    data = logged_in(ann).get("/hr/fire-times/", params).json()
    assert data["zone"] == "America/New_York" and len(data["fires"]) == 10
    assert "The other 1 zone (Europe/London)" in data["zone_note"]


def test_a_one_off_time_in_the_spring_gap_asks_which_of_two_times_is_meant(ann: Any) -> None:
    once = {"schedule_kind": "once", "at_local": "2027-03-14T02:30", "timezone": "America/New_York"}
    client = logged_in(ann)
    response = client.post("/hr/new/", compose_data(**once))
    assert response.status_code == 400
    html = page(response)
    assert "02:30 does not exist on 14 Mar 2027 in America/New_York" in html
    assert 'value="local:2027-03-14T01:59"' in html and "01:59 EST (-05:00)" in html
    assert 'value="local:2027-03-14T03:00"' in html and "03:00 EDT (-04:00)" in html
    assert Announcement.objects.count() == 0

    client.post("/hr/new/", compose_data(**once, at_choice="local:2027-03-14T03:00"))
    item = Announcement.objects.get()
    assert (item.at_local, item.at_fold) == ("2027-03-14T03:00", None)
    assert item.next_fire_at == datetime(2027, 3, 14, 7, 0, tzinfo=UTC)


def test_a_one_off_time_in_the_autumn_fold_stores_the_copy_chosen(ann: Any) -> None:
    once = {"schedule_kind": "once", "at_local": "2027-11-07T01:30", "timezone": "America/New_York"}
    client = logged_in(ann)
    html = page(client.post("/hr/new/", compose_data(**once)))
    assert "01:30 happens twice on 7 Nov 2027" in html
    assert "The first 01:30, EDT (-04:00)" in html and "The second 01:30, EST (-05:00)" in html
    assert Announcement.objects.count() == 0

    client.post("/hr/new/", compose_data(**once, at_choice="fold:1"))
    item = Announcement.objects.get()
    assert (item.at_local, item.at_fold) == ("2027-11-07T01:30", 1)
    assert item.next_fire_at == datetime(2027, 11, 7, 6, 30, tzinfo=UTC)
    edit = page(client.get(f"/hr/{item.pk}/edit/"))
    assert 'value="fold:1" checked' in edit  # the answer is shown again when editing


# --- live endpoints ---------------------------------------------------------------------------


def test_the_preview_endpoint_returns_sanitised_html_and_a_chat_rendering(ann: Any) -> None:
    body = "Hi {{ first_name }}\n\n<script>alert(1)</script>\n\n**bold** [x](javascript:alert(1))"
    data = logged_in(ann).post("/hr/preview/", {"title": "T", "body": body}).json()
    assert "<script" not in data["html"] and "&lt;script&gt;" in data["html"]  # text, inert
    assert 'href="javascript:' not in data["html"]
    assert "<strong>bold</strong>" in data["html"] and "Hi ann" in data["html"]
    assert "bold" in data["chat"] and "*bold*" not in data["chat"]
    assert "<strong>" not in data["chat"]
    assert "javascript:alert(1))" in data["chat"]  # markdown-it refused it: literal text
    slack, teams = data["limits"]
    assert slack.startswith("Slack: the whole text fits (") and "Teams: the whole" in teams


def test_the_preview_says_where_slack_and_teams_cut_a_long_text(ann: Any) -> None:
    body = "\n\n".join(["A paragraph of words. " * 40] * 30)
    data = logged_in(ann).post("/hr/preview/", {"title": "T", "body": body}).json()
    slack, teams = data["limits"]
    assert slack.startswith("Slack: shows the first ") and "of 26,399 characters" in slack
    assert teams.startswith("Teams: shows the first ") and "28,000 bytes" in teams
    cut = "✂ Slack stops here; “Read the whole announcement” links to the rest."
    assert data["chat"].endswith(cut)


def test_the_preview_endpoint_needs_post_and_the_csrf_token(ann: Any) -> None:
    assert logged_in(ann).get("/hr/preview/").status_code == 405
    client = Client(enforce_csrf_checks=True)
    client.force_login(ann)
    assert client.post("/hr/preview/", {"body": "x"}).status_code == 403


def test_the_audience_endpoint_counts_everyone_a_department_a_location_and_people(
    ann: Any,
) -> None:
    sales = factories.employees(3, prefix="s", department="Sales", location="Leeds")
    factories.employees(2, prefix="e", department="Eng", location="Leeds")
    factories.employees(1, prefix="x", department="Sales", location="Leeds", active=False)
    client = logged_in(ann)

    def count(**params: Any) -> dict[str, Any]:
        return dict(client.get("/hr/audience/", params).json())

    assert count(audience_kind="all")["count"] == 5
    sales_only = count(audience_kind="department", department="Sales")
    assert sales_only["count"] == 3 and sales_only["sample"] == ["Person 0", "Person 1", "Person 2"]
    assert count(audience_kind="location", location="Leeds")["count"] == 5
    assert count(audience_kind="location", location="Nowhere")["count"] == 0
    assert count(audience_kind="list", recipients=[sales[0].pk, sales[1].pk])["count"] == 2


def test_the_audience_endpoint_counts_everyone_in_several_departments_or_locations(
    ann: Any,
) -> None:
    factories.employees(3, prefix="s", department="Sales", location="Leeds")
    factories.employees(2, prefix="t", department="Support", location="London")
    factories.employees(4, prefix="e", department="Eng", location="Paris")
    factories.employees(1, prefix="x", department="Support", location="London", active=False)
    client = logged_in(ann)

    def count(**params: Any) -> int:
        return int(client.get("/hr/audience/", params).json()["count"])

    assert count(audience_kind="department", department=["Sales", "Support"]) == 5
    assert count(audience_kind="department", department=["Sales", "Nowhere"]) == 3
    assert count(audience_kind="location", location=["London", "Paris"]) == 6
    assert count(audience_kind="location", location=["", " "]) == 0


def test_the_audience_endpoint_says_how_many_opted_out_of_a_chosen_channel(ann: Any) -> None:
    people = factories.employees(3)
    people[0].opt_outs.create(channel="email")
    data = logged_in(ann).get("/hr/audience/", {"audience_kind": "all", "channels": "email"}).json()
    assert data["opted_out"] == [{"channel": "Email", "count": 1}]
    params = {"audience_kind": "all", "channels": "email", "mandatory": "on"}
    assert logged_in(ann).get("/hr/audience/", params).json()["opted_out"] == []


def test_the_fire_times_endpoint_lists_ten_times_with_the_dst_note(ann: Any) -> None:
    params = {
        "schedule_kind": "cron",
        "repeat": "daily",
        "time_of_day": "02:30",
        "timezone": "America/New_York",
    }
    with time_machine.travel(datetime(2027, 3, 10, 12, 0, tzinfo=UTC), tick=False):
        data = logged_in(ann).get("/hr/fire-times/", params).json()
    assert data["cron"] == "30 2 * * *" and data["description"] == "Every day at 02:30"
    assert len(data["fires"]) == 10
    gap_day = data["fires"][3]
    assert gap_day["local"] == "Sun 14 Mar 2027, 03:00 EDT"
    assert (
        gap_day["note"]
        == "02:30 does not exist on 14 Mar 2027 (clocks jump forward); fires at 03:00"
    )
    assert [f["note"] for f in data["fires"]].count("") == 9


def test_the_fire_times_endpoint_says_an_hourly_schedule_skips_a_time_the_gap_took(
    ann: Any,
) -> None:
    params = {
        "schedule_kind": "cron",
        "repeat": "custom",
        "cron": "15 * * * *",
        "timezone": "America/New_York",
    }
    with time_machine.travel(datetime(2024, 3, 10, 5, 0, tzinfo=UTC), tick=False):
        data = logged_in(ann).get("/hr/fire-times/", params).json()
    shown = [(fire["local"], fire["note"]) for fire in data["fires"][:3]]
    assert shown == [
        ("Sun 10 Mar 2024, 00:15 EST", ""),
        ("Sun 10 Mar 2024, 01:15 EST", ""),
        (
            "Sun 10 Mar 2024, 03:15 EDT",
            "02:15 does not exist on 10 Mar 2024 (clocks jump forward): this schedule skips it",
        ),
    ]


def test_the_fire_times_endpoint_asks_about_a_gap_time_and_explains_a_bad_cron(ann: Any) -> None:
    client = logged_in(ann)
    once = {"schedule_kind": "once", "at_local": "2027-03-14T02:30", "timezone": "America/New_York"}
    data = client.get("/hr/fire-times/", once).json()
    assert data["question"]["kind"] == "gap" and data["fires"] == []
    assert [c["value"] for c in data["question"]["choices"]] == [
        "local:2027-03-14T01:59",
        "local:2027-03-14T03:00",
    ]
    chosen = client.get("/hr/fire-times/", {**once, "at_choice": "local:2027-03-14T01:59"}).json()
    assert [f["local"] for f in chosen["fires"]] == ["Sun 14 Mar 2027, 01:59 EST"]
    bad = client.get(
        "/hr/fire-times/", {"schedule_kind": "cron", "cron": "1 2 3", "timezone": "UTC"}
    )
    assert "expected 5 fields" in bad.json()["errors"]["cron"]


def test_the_people_search_finds_active_employees_by_name_or_email(ann: Any) -> None:
    Employee.objects.create(email="grace@example.com", name="Grace Hopper")
    Employee.objects.create(email="gone@example.com", name="Grace Gone", active=False)
    found = logged_in(ann).get("/hr/people/", {"q": "grace"}).json()["results"]
    assert [p["email"] for p in found] == ["grace@example.com"]


# --- test send --------------------------------------------------------------------------------


def test_a_test_send_emails_only_the_requester_and_records_no_delivery(
    ann: Any, smtp_settings: SmtpSink
) -> None:
    factories.employees(3)
    item = draft(ann)
    response = logged_in(ann).post(f"/hr/{item.pk}/test/", follow=True)
    assert "Test sent to ann@example.com" in page(response)
    [received] = smtp_settings.received
    assert received.recipients == ["ann@example.com"]
    assert received.message["Subject"] == "[TEST] Canteen reopens"
    assert Delivery.objects.count() == 0 and Occurrence.objects.count() == 0


def test_a_test_from_the_compose_page_saves_a_draft_and_sends_only_to_me(
    ann: Any, smtp_settings: SmtpSink
) -> None:
    factories.employees(2)
    response = logged_in(ann).post("/hr/new/", compose_data(action="test"), follow=True)
    item = Announcement.objects.get()
    assert item.status == AnnouncementStatus.DRAFT
    assert "Test sent to ann@example.com" in page(response)
    assert [r.recipients for r in smtp_settings.received] == [["ann@example.com"]]
    assert Delivery.objects.count() == 0 and Occurrence.objects.count() == 0


def test_a_test_while_editing_sends_the_unsaved_text_without_a_new_version(
    ann: Any, smtp_settings: SmtpSink
) -> None:
    item = draft(ann)
    data = compose_data(title="Changed title", action="test", repeat="daily")
    response = logged_in(ann).post(f"/hr/{item.pk}/edit/", data)
    assert response.status_code == 200
    assert "Your changes are not saved yet." in page(response)
    assert smtp_settings.received[0].message["Subject"] == "[TEST] Changed title"
    item.refresh_from_db()
    assert item.title == "Canteen reopens" and item.versions.count() == 1


# --- approval ---------------------------------------------------------------------------------


def test_with_approval_required_an_announcer_submits_but_cannot_approve(
    ann: Any, approval_required: None
) -> None:
    client = logged_in(ann)
    response = client.post("/hr/new/", compose_data(), follow=True)
    item = Announcement.objects.get()
    assert item.status == AnnouncementStatus.PENDING_APPROVAL
    assert "Submitted for approval" in page(response)
    refused = client.post(f"/hr/{item.pk}/approve/")
    assert refused.status_code == 403 and "approve" in page(refused)
    item.refresh_from_db()
    assert item.status == AnnouncementStatus.PENDING_APPROVAL


def test_an_approver_approves_another_persons_announcement_and_it_is_shown(
    ann: Any, april: Any, approval_required: None
) -> None:
    item = draft(ann)
    lifecycle.submit(item, ann)
    client = logged_in(april)
    dashboard = page(client.get("/hr/"))
    assert "Waiting for your approval" in dashboard and "Review and approve" in dashboard
    assert "Approve version 1" in page(client.get(f"/hr/{item.pk}/"))
    html = page(client.post(f"/hr/{item.pk}/approve/", follow=True))
    item.refresh_from_db()
    assert item.status == AnnouncementStatus.SCHEDULED
    assert "Approved version 1." in html
    assert "Version 1 approved by <strong>april</strong> on" in html


def test_nobody_approves_their_own_announcement_and_the_page_says_why(
    django_user_model: Any, approval_required: None
) -> None:
    both = person(django_user_model, "both", ANNOUNCER, APPROVER)
    item = draft(both)
    lifecycle.submit(item, both)
    client = logged_in(both)
    detail = page(client.get(f"/hr/{item.pk}/"))
    assert "another approver has to approve it" in detail and "Approve version" not in detail
    response = client.post(f"/hr/{item.pk}/approve/", follow=True)
    assert response.status_code == 200
    assert "You cannot approve an announcement you wrote or last edited" in page(response)
    item.refresh_from_db()
    assert item.status == AnnouncementStatus.PENDING_APPROVAL and item.approvals.count() == 0


# --- detail, retry, pause, cancel -------------------------------------------------------------


def test_the_detail_page_shows_counts_by_state_versions_and_the_audit_log(ann: Any) -> None:
    factories.employees(4)
    item = factories.fired(title="Counted")
    rows = list(Delivery.objects.order_by("id"))
    factories.put(Delivery.objects.filter(pk=rows[0].pk), state=DeliveryState.SENT)
    factories.put(Delivery.objects.filter(pk=rows[1].pk), state=DeliveryState.FAILED)
    factories.put(Delivery.objects.filter(pk=rows[2].pk), state=DeliveryState.UNKNOWN)
    lifecycle.pause(item, ann)
    html = page(logged_in(ann).get(f"/hr/{item.pk}/"))
    row = html[html.index('class="occurrence') :]
    row = row[: row.index("</tr>")]
    cells = [c.split(">", 1)[1].split("<", 1)[0] for c in row.split("<td")[1:]]
    # version, pending, held, sending, sent, failed, unknown, skipped
    assert cells[:8] == ["v1", "1", "0", "0", "1", "1", "1", "0"]
    assert "Retry 1 failed" in html and "Retry 1 unknown…" in html
    assert "Paused" in html and "Version 1" in html
    assert "<td>ann</td><td>Paused</td>" in html


def test_retrying_failed_deliveries_happens_at_once(ann: Any) -> None:
    factories.employees(2)
    item = factories.fired()
    factories.put(Delivery.objects, state=DeliveryState.FAILED, last_error="550 no such user")
    response = logged_in(ann).post(f"/hr/{item.pk}/retry/", follow=True)
    assert "2 failed deliveries are queued to be sent again" in page(response)
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.PENDING}


def test_retrying_unknown_deliveries_requires_the_confirmation_step(ann: Any) -> None:
    factories.employees(2)
    item = factories.fired()
    occurrence = Occurrence.objects.get()
    factories.put(Delivery.objects, state=DeliveryState.UNKNOWN)
    client = logged_in(ann)

    unconfirmed = client.post(
        f"/hr/{item.pk}/retry/", {"include_unknown": "1", "occurrence": occurrence.pk}
    )
    assert unconfirmed.status_code == 302
    assert unconfirmed["Location"] == f"/hr/{item.pk}/retry/unknown/?occurrence={occurrence.pk}"
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.UNKNOWN}

    confirm = page(client.get(unconfirmed["Location"]))
    assert "Some people may receive this message twice." in confirm
    assert "may already have arrived" in confirm and "person0@example.com" in confirm

    done = client.post(
        f"/hr/{item.pk}/retry/",
        {"include_unknown": "1", "confirm_duplicates": "yes", "occurrence": occurrence.pk},
        follow=True,
    )
    assert "2 failed or unknown deliveries are queued" in page(done)
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.PENDING}


def test_an_approver_may_not_retry_deliveries(ann: Any, april: Any) -> None:
    factories.employees(1)
    item = factories.fired()
    factories.put(Delivery.objects, state=DeliveryState.FAILED)
    assert logged_in(april).post(f"/hr/{item.pk}/retry/").status_code == 403
    assert Delivery.objects.get().state == DeliveryState.FAILED


def test_pause_resume_and_cancel_after_a_confirmation(ann: Any) -> None:
    item = draft(ann)
    lifecycle.submit(item, ann)
    client = logged_in(ann)
    client.post(f"/hr/{item.pk}/pause/")
    item.refresh_from_db()
    assert item.status == AnnouncementStatus.PAUSED
    client.post(f"/hr/{item.pk}/resume/")
    item.refresh_from_db()
    assert item.status == AnnouncementStatus.SCHEDULED
    confirm = client.get(f"/hr/{item.pk}/cancel/")
    assert "This cannot be undone." in page(confirm)
    client.post(f"/hr/{item.pk}/cancel/")  # no confirmation: nothing happens
    item.refresh_from_db()
    assert item.status == AnnouncementStatus.SCHEDULED
    client.post(f"/hr/{item.pk}/cancel/", {"confirm": "yes"})
    item.refresh_from_db()
    assert item.status == AnnouncementStatus.CANCELLED
    edit = client.get(f"/hr/{item.pk}/edit/", follow=True)
    assert "cannot be edited" in page(edit)


def test_editing_after_the_first_occurrence_makes_a_new_version_only_for_later_sends(
    ann: Any,
) -> None:
    factories.employees(2)
    item = factories.fired(title="First words")
    item.created_by = ann
    item.save()
    data = compose_data(title="Second words", repeat="custom", cron="* * * * *", action="save")
    response = logged_in(ann).post(f"/hr/{item.pk}/edit/", data, follow=True)
    assert "Saved (version 2)" in page(response)
    item.refresh_from_db()
    assert item.title == "Second words" and item.status == AnnouncementStatus.SCHEDULED
    assert Occurrence.objects.get().version.number == 1
    html = page(response)
    assert 'id="current-version">Version 2' in html
    assert 'data-version="1"' in html  # the first send keeps its version
    assert "version 2; changed body, title" in html


# --- CSV export -------------------------------------------------------------------------------


def test_the_csv_export_lists_every_delivery_and_neutralises_formulas(ann: Any) -> None:
    factories.employees(2)
    item = factories.fired()
    first, second = Delivery.objects.order_by("id")
    factories.put(
        Delivery.objects.filter(pk=first.pk),
        state=DeliveryState.FAILED,
        attempts=3,
        last_error='=HYPERLINK("http://evil")',
    )
    factories.put(
        Delivery.objects.filter(pk=second.pk),
        state=DeliveryState.SENT,
        attempts=1,
        sent_at=timezone.now(),
    )
    Employee.objects.filter(pk=second.employee_id).update(email="@sum@example.com")
    response = logged_in(ann).get(f"/hr/{item.pk}/deliveries.csv")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv"
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == [
        "fire_at",
        "recipient",
        "channel",
        "state",
        "attempts",
        "last_error",
        "sent_at",
        "hold_reason",
    ]
    fire_at = Occurrence.objects.get().fire_at.isoformat()
    assert rows[1] == [
        fire_at,
        "person0@example.com",
        "email",
        "failed",
        "3",
        '\'=HYPERLINK("http://evil")',
        "",
        "",
    ]
    assert rows[2][1] == "'@sum@example.com" and rows[2][3] == "sent" and rows[2][6]
    assert len(rows) == 3


# --- CSV import -------------------------------------------------------------------------------

HEADER = "email,name,department,location,timezone"


def upload(client: Client, text: str, **extra: Any) -> Any:
    data = io.BytesIO(text.encode())
    data.name = "people.csv"
    return client.post("/hr/employees/import/", {"action": "check", "file": data, **extra})


def test_only_an_administrator_may_import_employees(ann: Any, ada: Any) -> None:
    assert logged_in(ann).get("/hr/employees/import/").status_code == 403
    assert upload(logged_in(ann), f"{HEADER}\n").status_code == 403
    assert logged_in(ada).get("/hr/employees/import/").status_code == 200


def test_a_csv_with_bad_rows_reports_every_line_and_imports_nothing(ada: Any) -> None:
    text = "\n".join(
        [
            HEADER,
            "ok@example.com,Ok Person,Eng,Leeds,Europe/London",
            "not-an-email,Bad,Eng,Leeds,Europe/London",
            "tz@example.com,Tz,Eng,Leeds,Mars/Olympus",
        ]
    )
    response = upload(logged_in(ada), text + "\n")
    assert response.status_code == 400
    html = page(response)
    assert "2 problems in people.csv — nothing was imported" in html
    assert (
        "<tr><td>3</td><td><code>email</code></td><td>email &#x27;not-an-email&#x27; is not a valid"
        in html
    )
    assert "<tr><td>4</td><td><code>timezone</code></td><td>timezone: unknown time zone" in html
    assert Employee.objects.count() == 0


def test_the_dry_run_shows_each_change_and_writes_nothing_then_import_writes(ada: Any) -> None:
    Employee.objects.create(email="old@example.com", name="Old", department="Eng", timezone="UTC")
    Employee.objects.create(email="same@example.com", name="Same", timezone="UTC")
    text = "\n".join(
        [
            HEADER,
            "new@example.com,New Person,Sales,Leeds,Europe/London",
            "old@example.com,Old,Finance,,UTC",
            "same@example.com,Same,,,UTC",
        ]
    )
    client = logged_in(ada)
    check = upload(client, text + "\n")
    html = page(check)
    assert check.status_code == 200
    assert "<strong>1</strong> new" in html and "<strong>1</strong> updated" in html
    assert "<strong>1</strong> unchanged" in html
    assert "New employee" in html
    assert "department: <del>Eng</del> → <ins>Finance</ins>" in html
    assert Employee.objects.count() == 2
    assert Employee.objects.get(email="old@example.com").department == "Eng"

    digest = html.split('name="digest" value="')[1].split('"')[0]
    stale = client.post("/hr/employees/import/", {"action": "apply", "digest": "0" * 64})
    assert stale.status_code == 302 and Employee.objects.count() == 2
    done = client.post("/hr/employees/import/", {"action": "apply", "digest": digest}, follow=True)
    assert "1 created, 1 updated, 1 unchanged" in page(done)
    assert Employee.objects.count() == 3
    assert Employee.objects.get(email="old@example.com").department == "Finance"
    again = client.post("/hr/employees/import/", {"action": "apply", "digest": digest}, follow=True)
    assert "no longer waiting to be imported" in page(again)


def test_the_dry_run_names_the_locations_an_import_creates_or_changes(ada: Any) -> None:
    factories.location("Leeds", zone="Europe/London")
    text = "\n".join(
        [
            f"{HEADER},country,subdivision,working_week",
            "new@example.com,New Person,Sales,Pune,Asia/Kolkata,IN,MH,Mon-Fri 09:00-18:00",
            "old@example.com,Old Person,Sales,Leeds,Europe/London,GB,ENG,",
        ]
    )
    html = page(upload(logged_in(ada), text + "\n"))
    assert "<li>new location Pune (Asia/Kolkata)</li>" in html
    assert "<li>location Leeds: country - → GB, subdivision - → ENG</li>" in html
    assert not Location.objects.filter(name="Pune").exists()


def test_the_schedule_builder_round_trips_when_editing(ann: Any) -> None:
    logged_in(ann).post(
        "/hr/new/", compose_data(repeat="weekly", weekdays=["1", "4"], time_of_day="08:15")
    )
    item = Announcement.objects.get()
    html = page(logged_in(ann).get(f"/hr/{item.pk}/edit/"))
    assert '<option value="weekly" selected>' in html
    assert 'value="08:15"' in html
    assert 'value="1" id="id_weekdays_0" checked' in html  # Monday
    assert 'value="4" id="id_weekdays_3" checked' in html  # Thursday
    assert 'value="2" id="id_weekdays_1" checked' not in html


def test_a_past_one_off_time_is_refused_on_its_field(ann: Any) -> None:
    past = (timezone.now() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    response = logged_in(ann).post(
        "/hr/new/", compose_data(schedule_kind="once", at_local=past, timezone="UTC")
    )
    assert response.status_code == 400 and "is in the past" in page(response)
    assert Announcement.objects.count() == 0


def test_resuming_edited_text_says_it_waits_for_approval(
    ann: Any, april: Any, approval_required: None
) -> None:
    item = draft(ann)
    lifecycle.submit(item, ann)
    lifecycle.approve(item, april)
    lifecycle.pause(item, ann)
    lifecycle.edit(item, ann, body="Changed while paused.")
    response = logged_in(ann).post(f"/hr/{item.pk}/resume/", follow=True)
    assert "resumes once an approver approves it" in page(response)
    item.refresh_from_db()
    assert item.status == AnnouncementStatus.PENDING_APPROVAL
