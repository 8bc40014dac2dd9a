"""HR's translation editor in real headless Chromium against a live server: from an
announcement's page, add a German translation beside the English text, watch the live preview
render it, save it, and see the detail page list German and say its readers now get it; and
on a phone (390 px) the list and the editor never scroll sideways, with an Arabic text edited
right to left.

The editor's screenshot goes to docs/screenshots/translations.png when BULLETIN_SCREENSHOTS=1
(run that way to refresh the README's picture), otherwise to a temporary directory.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from bulletin import conf
from bulletin.dispatch import lifecycle, translations
from bulletin.domain.models import Announcement, ScheduleKind
from bulletin.domain.roles import ANNOUNCER
from tests import factories

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TIMEOUT_MS = 5_000
DESK = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
PASSWORD = "not-a-real-pw-1"
ENGLISH = (
    "Hi {{ first_name }},\n\nFrom **Monday** the canteen serves lunch from 12:00 to 14:00.\n\n"
    "- Soup of the day\n- A vegetarian dish\n"
)
GERMAN = (
    "Hallo {{ first_name }},\n\nAb **Montag** gibt es in der Kantine Mittagessen von 12:00 "
    "bis 14:00 Uhr.\n\n- Tagessuppe\n- Ein vegetarisches Gericht\n"
)


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def canteen(ann: Any) -> Announcement:
    """A draft to a company where eight people read German and three the default, English."""
    factories.employees(8, prefix="de", language="de", department="Berlin office")
    factories.employees(3, prefix="en", department="London office")
    item = Announcement(
        title="The canteen reopens",
        body=ENGLISH,
        channels=["email", "inapp"],
        schedule_kind=ScheduleKind.CRON,
        cron="0 9 * * 1",
        timezone="Europe/London",
    )
    return lifecycle.create(item, ann)


def open_page(browser: Any, base: str, viewport: dict[str, int]) -> Any:
    page = browser.new_context(viewport=viewport).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{base}/accounts/login/?next=/hr/")
    page.get_by_label("Username").fill("ann")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/hr/")
    return page


def test_a_german_translation_written_beside_the_english_previewed_saved_and_listed(
    browser: Any, live_server: Any, shots: Path
) -> None:
    ann = factories.person("ann", ANNOUNCER, password=PASSWORD, first_name="Ann")
    item = canteen(ann)
    base = live_server.url
    page = open_page(browser, base, DESK)

    page.goto(f"{base}/hr/{item.pk}/")
    coverage = page.locator("#coverage")
    assert "8 people read German: no German text, they get English." in coverage.inner_text()
    page.locator("#translations-link").click()
    page.wait_for_url(f"{base}/hr/{item.pk}/translations/")
    page.get_by_label("Language to add").select_option("de")
    page.get_by_role("button", name="Write it side by side").click()
    page.wait_for_url(f"{base}/hr/{item.pk}/translations/de/")

    # The English text, read-only, on the left; the German fields, empty, on the right.
    source = page.locator("#source-body")
    assert source.input_value() == ENGLISH
    assert source.get_attribute("readonly") is not None
    assert (
        page.locator("#source-body").bounding_box()["x"]
        < page.locator("#id_body").bounding_box()["x"]
    )
    page.locator("#id_title").fill("Die Kantine öffnet wieder")
    page.locator("#id_body").fill(GERMAN + "\n<script>window.pwned = 1</script>")

    # The live preview: the server's sanitised rendering, personalised for the writer.
    preview = page.locator("#preview-html")
    preview.locator("strong", has_text="Montag").wait_for()
    expect(page.locator("#preview-title")).to_have_text("Die Kantine öffnet wieder")
    assert "Hallo Ann," in preview.inner_text()
    assert preview.locator("li").all_inner_texts() == ["Tagessuppe", "Ein vegetarisches Gericht"]
    assert page.evaluate("window.pwned") is None
    page.locator("#id_body").fill(GERMAN)
    expect(preview).not_to_contain_text("pwned")
    page.locator("#preview-html li").first.wait_for()
    page.screenshot(path=str(shots / "translations.png"), full_page=True)
    assert (shots / "translations.png").read_bytes().startswith(b"\x89PNG")

    page.get_by_role("button", name="Save the German text").click()
    page.wait_for_url(f"{base}/hr/{item.pk}/translations/")
    assert "Saved the German text (version 1)." in page.locator(".messages").inner_text()
    german = page.locator("#language-list tr[data-language='de']")
    assert "Version 1" in german.inner_text() and "Die Kantine öffnet wieder" in german.inner_text()
    assert translations.available(item)["de"].body == GERMAN

    page.goto(f"{base}/hr/{item.pk}/")
    assert "German" in page.locator("#languages-summary [data-language='de']").inner_text()
    assert (
        "8 people read German: they get the German text." in page.locator("#coverage").inner_text()
    )


# What on the page is wider than the phone's screen, by description.
OVERFLOW = """() => ({
  pageWidth: document.documentElement.scrollWidth,
  viewport: window.innerWidth,
  wide: [...document.querySelectorAll(
      "input:not([type=hidden]), textarea, select, button, a.button")]
    .filter((el) => { const box = el.getBoundingClientRect();
                      return box.width > 1 && (box.left < 0 || box.right > window.innerWidth); })
    .map((el) => el.outerHTML.slice(0, 100)),
})"""


def test_on_a_phone_the_translation_pages_fit_and_arabic_is_edited_right_to_left(
    browser: Any, live_server: Any, settings: Any
) -> None:
    settings.BULLETIN = replace(conf.load({}), languages="en,de,ar")
    ann = factories.person("ann", ANNOUNCER, password=PASSWORD)
    item = canteen(ann)
    translations.save_text(item, "de", "Die Kantine öffnet wieder", GERMAN, ann)
    base = live_server.url
    page = open_page(browser, base, PHONE)

    for path in ("translations/", "translations/de/", "translations/ar/", ""):
        page.goto(f"{base}/hr/{item.pk}/{path}")
        measured = page.evaluate(OVERFLOW)
        assert measured["pageWidth"] <= measured["viewport"] == PHONE["width"], path
        assert measured["wide"] == [], path

    page.goto(f"{base}/hr/{item.pk}/translations/ar/")
    body = page.locator("#id_body")
    assert body.evaluate("el => getComputedStyle(el).direction") == "rtl"
    assert page.locator("#source-body").evaluate("el => getComputedStyle(el).direction") == "ltr"
    # One column on a phone: the translation's fields come below the default's, not beside.
    assert body.bounding_box()["y"] > page.locator("#source-body").bounding_box()["y"]
