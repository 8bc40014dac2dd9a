"""Every HR and employee screen on a phone (390 x 844, an iPhone's viewport) in real headless
Chromium against a live server: the page itself never scrolls sideways (wide tables scroll in
their own box), every navigation link can be reached, every button is a touch target, and every
form field fits the screen.

Screenshots of the dashboard and the detail page at 390 px go to docs/screenshots/ when
BULLETIN_SCREENSHOTS=1 (run that way to refresh them), otherwise to a temporary directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Group

from bulletin.dispatch.sender import Dispatcher
from bulletin.dispatch.signed_links import acknowledge_url
from bulletin.domain.models import Announcement, Employee, InboxItem, Occurrence
from bulletin.domain.roles import ADMINISTRATOR, ANNOUNCER, APPROVER
from tests import factories

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TIMEOUT_MS = 5_000
PHONE = {"width": 390, "height": 844}
PASSWORD = "not-a-real-pw-1"
SMALLEST_BUTTON_PX = 40  # Apple asks for 44 pt; allow a little for rounding and borders

# Measured in the page: whatever on it is too wide or too small for a phone, by description.
MEASURE = """(smallest) => {
  const shown = (el) => {
    const box = el.getBoundingClientRect();
    return box.width > 1 && box.height > 1 && getComputedStyle(el).visibility !== "hidden";
  };
  const describe = (el) => el.outerHTML.slice(0, 100);
  const fields =
    "input:not([type=hidden]):not([type=checkbox]):not([type=radio]), select, textarea";
  return {
    pageWidth: document.documentElement.scrollWidth,
    viewport: window.innerWidth,
    smallButtons: [...document.querySelectorAll("button, input[type=submit], a.button")]
      .filter(shown)
      .filter((el) => el.getBoundingClientRect().height < smallest)
      .map(describe),
    wideFields: [...document.querySelectorAll(fields)]
      .filter(shown)
      .filter((el) => {
        const box = el.getBoundingClientRect();
        return box.left < 0 || box.right > window.innerWidth;
      })
      .map(describe),
  };
}"""


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def hr_person(django_user_model: Any) -> Employee:
    """Hana, who writes, approves and imports, and is an employee with an inbox too."""
    user = django_user_model.objects.create_user("hana", "hana@example.com", PASSWORD)
    user.groups.add(*Group.objects.filter(name__in=[ANNOUNCER, APPROVER, ADMINISTRATOR]))
    factories.location("London", zone="Europe/London")
    factories.employees(6, department="Engineering", location="London")
    return Employee.objects.create(
        email="hana@example.com",
        name="Hana Kowalczyk",
        department="People",
        timezone="Europe/London",
        user=user,
    )


def sent_announcements() -> tuple[Announcement, InboxItem, Occurrence]:
    """One in everyone's inbox asking for acknowledgement, one sent by email only (so its own
    page shows it rather than redirecting to an inbox item)."""
    inbox = factories.fired(
        channels=("inapp", "email"),
        title="Fire drill on Thursday at noon for everyone in the London office",
        body="Meet at **assembly point B** by the car park. Take your badge.",
        requires_ack=True,
    )
    emailed = factories.fired(channels=("email",), title="New parking rules from January")
    Dispatcher().run_until_idle()
    item = InboxItem.objects.get(employee__email="hana@example.com")
    return inbox, item, Occurrence.objects.get(announcement=emailed)


def path_of(url: str) -> str:
    return urlsplit(url).path


def open_phone(browser: Any, base: str) -> Any:
    page = browser.new_context(viewport=PHONE).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{base}/accounts/login/?next=/hr/")
    return page


def log_in(page: Any, base: str) -> None:
    page.get_by_label("Username").fill("hana")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/hr/")


def assert_fits_a_phone(page: Any, screen: str) -> None:
    found = page.evaluate(MEASURE, SMALLEST_BUTTON_PX)
    assert found["viewport"] == PHONE["width"], screen
    assert found["pageWidth"] <= found["viewport"], f"{screen} scrolls sideways: {found}"
    assert not found["smallButtons"], f"{screen}: buttons under {SMALLEST_BUTTON_PX} px: {found}"
    assert not found["wideFields"], f"{screen}: form fields wider than the screen: {found}"


def assert_navigation_reachable(page: Any, screen: str) -> None:
    """Every link of the main navigation is on screen, inside the viewport, big enough to tap."""
    links = page.locator("header nav a, header nav button")
    assert links.count() >= 3, screen
    for n in range(links.count()):
        link = links.nth(n)
        assert link.is_visible(), f"{screen}: {link.inner_text()!r} is hidden"
        box = link.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (screen, box)
        assert box["height"] >= SMALLEST_BUTTON_PX, f"{screen}: {link.inner_text()!r} {box}"


ROSTER = (
    "email,name,department,location,timezone\n"
    "person0@example.com,Person Zero,Research and Development (Cambridge),London,Europe/London\n"
    "new.starter.with.a.long.address@example.com,New Starter,People,London,Europe/London\n"
)


def check_an_import_on_a_phone(page: Any, base: str) -> None:
    """The import's dry run, whose table of changes is the widest thing HR sees there."""
    page.goto(f"{base}/hr/employees/import/")
    file = {"name": "staff.csv", "mimeType": "text/csv", "buffer": ROSTER.encode()}
    page.get_by_label("Employee CSV file").set_input_files(file)
    page.get_by_role("button", name="Check the file").click()
    page.locator("#import-rows").wait_for()
    assert_fits_a_phone(page, "the import's dry run")


def phone_shot(page: Any, path: Path, most: int = 1900) -> None:
    """The top of the page, down to ``most`` px: a whole detail page is five screens long,
    too tall to show beside the dashboard in the README."""
    height = min(page.evaluate("document.documentElement.scrollHeight"), most)
    clip = {"x": 0, "y": 0, "width": PHONE["width"], "height": height}
    page.screenshot(path=str(path), full_page=True, clip=clip)
    assert path.read_bytes().startswith(b"\x89PNG")


def test_every_hr_and_employee_screen_fits_a_phone(
    browser: Any, live_server: Any, django_user_model: Any, shots: Path
) -> None:
    hr_person(django_user_model)
    announcement, item, emailed = sent_announcements()
    base = live_server.url
    page = open_phone(browser, base)
    assert_fits_a_phone(page, "the login page")
    log_in(page, base)

    screens = {
        "/hr/": "dashboard",
        "/hr/new/": "",
        f"/hr/{announcement.pk}/": "detail",
        "/hr/employees/import/": "",
        "/inbox/": "",
        f"/inbox/{item.pk}/": "",
        "/preferences/": "",
        f"/announcements/{emailed.pk}/": "",
        f"/hr/{announcement.pk}/engagement/": "",
        f"/hr/{announcement.pk}/not-acknowledged/?occurrence={item.delivery.occurrence_id}": "",
        "/hr/employees/invite/": "",
        path_of(acknowledge_url(item.employee_id, item.delivery.occurrence_id, "email")): "",
    }
    for path, picture in screens.items():
        response = page.goto(f"{base}{path}")
        assert response.status == 200, path
        assert page.url == f"{base}{path}", f"{path} redirected to {page.url}"
        assert_fits_a_phone(page, path)
        assert_navigation_reachable(page, path)
        if picture:
            phone_shot(page, shots / f"{picture}-phone.png")

    check_an_import_on_a_phone(page, base)

    response = page.goto(f"{base}/no-such-page/")  # the 404 page, with DEBUG off as here
    assert response.status == 404
    assert_fits_a_phone(page, "the 404 page")
    assert_navigation_reachable(page, "the 404 page")


def test_a_wide_table_scrolls_in_its_own_box_with_a_cue_not_the_page(
    browser: Any, live_server: Any, django_user_model: Any
) -> None:
    hr_person(django_user_model)
    announcement, _, _ = sent_announcements()
    page = open_phone(browser, live_server.url)
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/hr/{announcement.pk}/")

    box = page.locator(".table-scroll:has(#occurrences)")
    style = box.evaluate("(el) => getComputedStyle(el).overflowX")
    assert style == "auto"
    assert box.evaluate("(el) => el.scrollWidth > el.clientWidth"), "the table fits: no test"
    cue = box.evaluate("(el) => getComputedStyle(el).backgroundImage")
    assert "gradient" in cue, "no shadow at the edge says there is more to the side"
    box.evaluate("(el) => { el.scrollLeft = el.scrollWidth; }")
    page.wait_for_function("() => document.querySelector('.table-scroll').scrollLeft > 0")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_the_dashboard_shows_each_announcement_as_a_labelled_card_on_a_phone(
    browser: Any, live_server: Any, django_user_model: Any
) -> None:
    hr_person(django_user_model)
    sent_announcements()
    page = open_phone(browser, live_server.url)
    log_in(page, live_server.url)

    row = page.locator(".dashboard-table tbody tr", has_text="Fire drill").first
    schedule = row.locator("td[data-label='Schedule']")
    label = schedule.evaluate("(el) => getComputedStyle(el, '::before').content")
    assert label == '"Schedule"'
    assert page.locator(".dashboard-table thead").first.bounding_box()["height"] <= 1
    cell = schedule.bounding_box()
    assert cell["width"] > PHONE["width"] / 2, "cells stack one under another, full width"
