"""The HR screens in a real headless Chromium against a live server: compose with the live
preview, a test send, approval by a second person, delivery; editing after the first send;
pausing and cancelling; delivering within working hours (the preview names who waits and why,
the detail page counts held deliveries, "send now regardless").

Screenshots of the main screens go to docs/screenshots/ when BULLETIN_SCREENSHOTS=1 (run that
way to refresh them), otherwise to a temporary directory so a normal run leaves the tree clean.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.utils import timezone

from bulletin import conf
from bulletin.dispatch import lifecycle
from bulletin.dispatch.planning import tick
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    Delivery,
    DeliveryState,
    Employee,
    Occurrence,
    ScheduleKind,
)
from bulletin.domain.roles import ANNOUNCER, APPROVER
from tests import factories
from tests.harness import SmtpSink

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TIMEOUT_MS = 5_000
VIEWPORT = {"width": 1280, "height": 800}
PASSWORD = "not-a-real-pw-1"


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def hr_user(django_user_model: Any, name: str, role: str, first: str, last: str) -> Any:
    user = django_user_model.objects.create_user(
        name, f"{name}@example.com", PASSWORD, first_name=first, last_name=last
    )
    user.groups.add(Group.objects.get(name=role))
    return user


def staff() -> None:
    """A small company, so the audience builder has something to count."""
    people = [
        ("grace", "Grace Hopper", "Engineering", "London", "Europe/London"),
        ("alan", "Alan Turing", "Engineering", "London", "Europe/London"),
        ("katherine", "Katherine Johnson", "Engineering", "New York", "America/New_York"),
        ("linus", "Linus Pauling", "Engineering", "Berlin", "Europe/Berlin"),
        ("mary", "Mary Jackson", "Sales", "New York", "America/New_York"),
        ("tim", "Tim Berners-Lee", "Sales", "London", "Europe/London"),
        ("hedy", "Hedy Lamarr", "People", "Berlin", "Europe/Berlin"),
        ("ada", "Ada Lovelace", "People", "London", "Europe/London"),
    ]
    for _, _, _, where, zone in people:
        factories.location(where, zone=zone)
    Employee.objects.bulk_create(
        Employee(
            email=f"{key}@example.com",
            name=name,
            department=dept,
            location_id=where,
            timezone=zone,
        )
        for key, name, dept, where, zone in people
    )


def draft_announcement(title: str, cron: str = "0 9 * * 1") -> Announcement:
    return Announcement(
        title=title,
        body="Details to follow.",
        channels=["email", "inapp"],
        schedule_kind=ScheduleKind.CRON,
        cron=cron,
        timezone="Europe/London",
    )


def open_page(browser: Any) -> Any:
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page


def log_in(page: Any, base: str, username: str, path: str = "/hr/") -> None:
    page.goto(f"{base}{path}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}{path}")


def shot(page: Any, folder: Path, name: str, *, full_page: bool = False) -> None:
    path = folder / name
    page.screenshot(path=str(path), full_page=full_page)
    assert path.read_bytes().startswith(b"\x89PNG")


def test_compose_preview_test_send_approval_and_delivery(
    browser: Any,
    live_server: Any,
    settings: Any,
    django_user_model: Any,
    smtp_settings: SmtpSink,
    shots: Path,
) -> None:
    settings.BULLETIN = replace(conf.load({}), require_approval=True)
    staff()
    hr_user(django_user_model, "ann", ANNOUNCER, "Ann", "Lee")
    hr_user(django_user_model, "april", APPROVER, "April", "Shah")
    base = live_server.url

    page = open_page(browser)
    log_in(page, base, "ann")
    page.get_by_role("link", name="New announcement").first.click()
    page.wait_for_url(f"{base}/hr/new/")

    # Message, with the live preview: the server's sanitised HTML, so the script never runs.
    page.get_by_label("Title").fill("Office move: new address from Monday")
    page.get_by_label("Text").fill(
        "Hi {{ first_name }},\n\nFrom **Monday** we work at *12 Canal Street*.\n\n"
        "- Desks are unassigned\n- Bring your badge\n\n<script>window.pwned = 1</script>"
    )
    preview = page.locator("#preview-html")
    preview.locator("strong", has_text="Monday").wait_for()
    assert preview.locator("script").count() == 0
    assert "<script>window.pwned = 1</script>" in preview.inner_text()  # shown as text
    assert page.evaluate("window.pwned") is None
    assert "Hi Ann" in preview.inner_text()
    assert "From Monday we work at 12 Canal Street" in page.locator("#preview-chat").inner_text()
    assert "Slack: the whole text fits" in page.locator("#preview-limits").inner_text()

    # Audience: departments, counted live with a sample of names; several may be chosen.
    page.get_by_label("Departments", exact=True).check()
    page.select_option("#id_department", ["Engineering", "Sales"])
    page.wait_for_function("() => document.getElementById('audience-count').textContent === '6'")
    page.select_option("#id_department", "Engineering")
    page.wait_for_function("() => document.getElementById('audience-count').textContent === '4'")
    assert "Alan Turing" in page.locator("#audience-sample").inner_text()
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, shots, "compose.png")

    # Schedule: the builder writes the cron expression and lists the next ten sends.
    page.get_by_label("Repeatedly").check()
    page.select_option("#id_repeat", "weekly")
    page.locator("label.choice.inline", has_text="Mon").locator("input").check()
    page.locator("label.choice.inline", has_text="Thu").locator("input").check()
    page.fill("#id_time_of_day", "09:00")
    page.wait_for_function("() => document.getElementById('id_cron').value === '0 9 * * 1,4'")
    page.wait_for_function("() => document.querySelectorAll('#fires li').length === 10")
    page.evaluate("document.getElementById('schedule').scrollIntoView()")
    shot(page, shots, "schedule-builder.png")
    # A raw expression across a clock change shows the DST note.
    page.select_option("#id_repeat", "custom")
    page.fill("#id_cron", "30 2 * 3 0")
    page.select_option("#id_timezone", "America/New_York")
    page.locator("#fires .note", has_text="does not exist").first.wait_for()
    assert "clocks jump forward" in page.locator("#fires").inner_text()
    page.evaluate("document.getElementById('schedule').scrollIntoView()")
    shot(page, shots, "schedule.png")

    # A one-off in the spring gap asks which time is meant, before anything is saved.
    page.get_by_label("Once, at a date and time").check()
    page.fill("#id_at_local", "2027-03-14T02:30")
    page.locator("#at-question input[type=radio]").nth(1).wait_for()
    assert "does not exist" in page.locator("#at-question").inner_text()
    # The real one: ten minutes from now in London.
    page.select_option("#id_timezone", "Europe/London")
    when = (timezone.now() + timedelta(minutes=10)).astimezone(ZoneInfo("Europe/London"))
    page.fill("#id_at_local", when.strftime("%Y-%m-%dT%H:%M"))
    page.wait_for_function("() => document.querySelectorAll('#fires li').length === 1")
    assert page.locator("#at-question").is_hidden()

    # Send a test to me: saves a draft, emails only Ann, records no delivery.
    page.get_by_role("button", name="Send a test to me").click()
    page.wait_for_url(f"{base}/hr/*/edit/")
    assert "Test sent to ann@example.com" in page.locator(".messages").inner_text()
    assert [r.recipients for r in smtp_settings.received] == [["ann@example.com"]]
    assert Delivery.objects.count() == 0 and Occurrence.objects.count() == 0
    item = Announcement.objects.get()
    assert item.status == AnnouncementStatus.DRAFT

    # Submit: approval is required, so it waits for a second person.
    page.get_by_role("button", name="Submit for approval").click()
    page.wait_for_url(f"{base}/hr/{item.pk}/")
    assert page.locator("#status").inner_text() == "Waiting for approval"
    assert "An approver other than the author" in page.locator("#approval-box").inner_text()

    approver = open_page(browser)
    log_in(approver, base, "april")
    approver.get_by_role("link", name="Review and approve").click()
    approver.get_by_role("button", name="Approve version 1").click()
    approver.wait_for_url(f"{base}/hr/{item.pk}/")
    assert approver.locator("#status").inner_text() == "Scheduled"
    assert "Version 1 approved by April Shah" in approver.locator("#approvals").inner_text()

    # Time passes: the planner and a dispatcher run; the page shows what was sent.
    item.refresh_from_db()
    assert item.next_fire_at is not None
    with time_machine.travel(item.next_fire_at + timedelta(seconds=30), tick=True):
        tick()
        assert Dispatcher().run_until_idle() == 4
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.SENT}
    assert len(smtp_settings.received) == 5  # the test plus four real sends

    approver.reload()
    row = approver.locator("#occurrences tr.occurrence")
    assert row.locator("td.sent").inner_text() == "4"
    assert approver.locator("#status").inner_text() == "Finished"
    shot(approver, shots, "detail.png", full_page=True)

    # A little more on the dashboard, for the screenshot.
    ann = django_user_model.objects.get(username="ann")
    factories.announcement(now=timezone.now(), cron="0 9 * * 1-5", title="Weekly safety tip")
    lifecycle.create(draft_announcement("Holiday rota for December"), ann)
    paused = lifecycle.create(draft_announcement("Car park resurfacing"), ann)
    Announcement.objects.filter(pk=paused.pk).update(status=AnnouncementStatus.PAUSED)
    page.goto(f"{base}/hr/")
    assert "Office move: new address from Monday" in page.locator("#status-finished").inner_text()
    shot(page, shots, "dashboard.png", full_page=True)


def test_editing_after_the_first_send_keeps_that_send_on_version_1(
    browser: Any, live_server: Any, settings: Any, django_user_model: Any
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    ann = hr_user(django_user_model, "ann", ANNOUNCER, "Ann", "Lee")
    factories.employees(3)
    item = factories.fired(title="Canteen menu", body="Soup of the day: **tomato**.")
    Announcement.objects.filter(pk=item.pk).update(created_by=ann)
    Dispatcher().run_until_idle()
    base = live_server.url

    page = open_page(browser)
    log_in(page, base, "ann", f"/hr/{item.pk}/")
    page.get_by_role("link", name="Edit").click()
    page.wait_for_url(f"{base}/hr/{item.pk}/edit/")
    assert page.locator("#id_cron").input_value() == "* * * * *"
    page.get_by_label("Text").fill("Soup of the day: **leek and potato**.")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(f"{base}/hr/{item.pk}/")
    assert "Saved (version 2)" in page.locator(".messages").inner_text()
    assert page.locator("#current-version").inner_text() == "Version 2"
    first = page.locator("#occurrences tr.occurrence")
    assert first.count() == 1 and first.locator(".version-cell").inner_text() == "v1"

    item.refresh_from_db()
    # Just past the next send after the edit: exactly one new occurrence, whatever the second.
    assert item.next_fire_at is not None
    with time_machine.travel(item.next_fire_at + timedelta(seconds=1), tick=False):
        tick()
    page.reload()
    versions = page.locator("#occurrences .version-cell").all_inner_texts()
    assert versions == ["v2", "v1"]  # newest first: later sends use version 2
    assert "leek and potato" in page.locator(".announcement-body").first.inner_text()


def test_pause_then_cancel_after_confirming(
    browser: Any, live_server: Any, django_user_model: Any
) -> None:
    ann = hr_user(django_user_model, "ann", ANNOUNCER, "Ann", "Lee")
    item = lifecycle.create(draft_announcement("Quarterly all-hands", "0 16 * * 5"), ann)
    lifecycle.submit(item, ann)
    base = live_server.url

    page = open_page(browser)
    log_in(page, base, "ann", f"/hr/{item.pk}/")
    assert page.locator("#status").inner_text() == "Scheduled"
    page.get_by_role("button", name="Pause").click()
    page.wait_for_url(f"{base}/hr/{item.pk}/")
    assert page.locator("#status").inner_text() == "Paused"
    assert page.get_by_role("button", name="Resume").is_visible()

    page.get_by_role("link", name="Cancel…").click()
    page.wait_for_url(f"{base}/hr/{item.pk}/cancel/")
    assert "This cannot be undone." in page.locator(".callout").inner_text()
    page.get_by_role("button", name="Yes, cancel this announcement").click()
    page.wait_for_url(f"{base}/hr/{item.pk}/")
    assert page.locator("#status").inner_text() == "Cancelled"
    assert page.get_by_role("link", name="Edit").count() == 0
    item.refresh_from_db()
    assert item.status == AnnouncementStatus.CANCELLED


@pytest.fixture
def clock_in_2024(settings: Any) -> None:
    """The server's clock is moved to 2024 while Chromium's is not: cookies must not carry an
    expiry date computed from the server's clock, or Chromium drops them as long expired."""
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = True
    settings.CSRF_COOKIE_AGE = None


def test_working_hours_preview_names_who_waits_then_send_now_releases_them(
    browser: Any, live_server: Any, django_user_model: Any, clock_in_2024: None, shots: Path
) -> None:
    factories.location(
        "Pune",
        zone="Asia/Kolkata",
        country="IN",
        subdivision="MH",
        working_week="Mon-Fri 08:00-18:00",
    )
    factories.employees(3, prefix="pune", zone="Asia/Kolkata", location="Pune")
    factories.employees(1, prefix="tokyo", zone="Asia/Tokyo")  # 13:30 there: a working hour
    hr_user(django_user_model, "ann", ANNOUNCER, "Ann", "Lee")
    base = live_server.url
    page = open_page(browser)

    # Wednesday 30 October 2024: HR writes a one-off for 10:00 Pune time on Diwali.
    with time_machine.travel(datetime(2024, 10, 30, 6, tzinfo=UTC), tick=True):
        log_in(page, base, "ann", "/hr/new/")
        page.get_by_label("Title").fill("Diwali greetings from the board")
        page.get_by_label("Text").fill("Happy Diwali, {{ first_name }}!")
        page.fill("#id_at_local", "2024-10-31T10:00")
        page.select_option("#id_timezone", "Asia/Kolkata")
        page.locator("#fires li", has_text="Thu 31 Oct 2024, 10:00 IST").wait_for()
        assert page.locator("#fires-waiting-lines li").count() == 0
        page.get_by_label("Deliver within each person's working hours").check()
        waiting = page.locator("#fires-waiting-lines li")
        waiting.first.wait_for()
        assert waiting.all_inner_texts() == ["3 in Pune: Diwali, delivered Fri 1 Nov 08:00 IST"]
        assert "3 people receive it later" in page.locator("#fires-waiting-note").inner_text()
        page.evaluate("document.getElementById('schedule').scrollIntoView()")
        shot(page, shots, "working-hours-preview.png")
        # Mandatory never waits, and the panel says so.
        page.check("#id_mandatory")
        page.locator("#fires-waiting-note", has_text="Mandatory: sent at once").wait_for()
        assert waiting.count() == 0
        page.uncheck("#id_mandatory")
        waiting.first.wait_for()
        page.get_by_role("button", name="Schedule").click()
        page.wait_for_url(f"{base}/hr/*/")
    item = Announcement.objects.get()
    assert item.working_hours and item.status == AnnouncementStatus.SCHEDULED

    # 10:01 in Pune: the planner fans it out; Pune's three wait for Friday, Tokyo's goes.
    with time_machine.travel(datetime(2024, 10, 31, 4, 31, tzinfo=UTC), tick=True):
        tick()
        page.reload()
        assert page.locator("#held-count").inner_text() == "3"
        assert page.locator("#pending-count").inner_text() == "1"
        groups = page.locator("#held-groups li").all_inner_texts()
        assert groups == ["3 in Pune held until Fri 1 Nov 08:00 IST — Diwali"]
        shot(page, shots, "working-hours-held.png", full_page=True)
        page.get_by_role("button", name="Send now regardless").click()
        page.wait_for_url(f"{base}/hr/{item.pk}/")
        message = "3 deliveries sent now regardless of working hours."
        assert message in page.locator(".messages").inner_text()
        assert page.locator("#held").count() == 0
    states = list(Delivery.objects.values_list("state", flat=True))
    assert sorted(states) == [DeliveryState.PENDING] * 4
