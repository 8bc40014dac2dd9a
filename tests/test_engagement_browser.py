"""Who has read it, in real headless Chromium: the detail page's figures, the SVG chart drawn
by the server (a real size, its legend), the not-yet-acknowledged list it links to, and the
section on a phone's width. The scripted mix is test_engagement_figures's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bulletin.domain.models import Occurrence
from bulletin.domain.roles import ANNOUNCER
from tests.test_engagement_figures import Mix, scripted_mix
from tests.test_hr_browser import hr_user, log_in, open_page

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def mix() -> Mix:
    return scripted_mix()


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_the_detail_page_shows_who_has_read_it_with_a_chart_that_renders(
    browser: Any, live_server: Any, django_user_model: Any, mix: Mix, shots: Path
) -> None:
    hr_user(django_user_model, "ann", ANNOUNCER, "Ann", "Lee")
    base = live_server.url
    page = open_page(browser)
    log_in(page, base, "ann", f"/hr/{mix.item.pk}/")

    section = page.locator("#engagement")
    section.scroll_into_view_if_needed()
    assert page.locator("#total-reached").inner_text() == "13"
    assert page.locator("#total-opened").inner_text() == "6 (46%)"
    assert page.locator("#total-acknowledged").inner_text() == "4 (31%)"
    assert "email 13, inapp 6" in page.locator("#total-delivered").inner_text()
    sales = page.locator("#engagement-by-department tr", has_text="Sales")
    assert sales.locator("td").inner_text() == "fewer than 5"
    assert "shown as “fewer than 5”" in page.locator("#privacy-note").inner_text()

    chart = page.locator("#engagement-chart svg")
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100, box
    assert page.locator("#engagement-chart-title").text_content() == (
        "Reads and acknowledgements over time"
    )
    legend = page.locator("#engagement-chart-legend")
    legend_box = legend.bounding_box()
    assert legend_box is not None and legend_box["width"] > 0 and legend_box["height"] > 0
    assert "Opened (6)" in legend.text_content() and "Acknowledged (4)" in legend.text_content()
    # The lines are drawn: each polyline has a length on screen.
    for series in ("reads", "acks"):
        line = page.locator(f"#engagement-chart .series-{series} polyline").bounding_box()
        assert line is not None and line["width"] > 0, series
    section.screenshot(path=str(shots / "engagement.png"))

    page.get_by_role("link", name="Not yet acknowledged…").click()
    page.wait_for_url(f"{base}/hr/{mix.item.pk}/not-acknowledged/")
    assert page.locator("#not-acknowledged-count").inner_text() == "9"
    assert page.locator("#not-acknowledged tbody tr").count() == 9
    page.context.close()


def test_hr_reminds_one_sends_people_from_its_list_in_the_browser(
    browser: Any, live_server: Any, django_user_model: Any, mix: Mix, shots: Path
) -> None:
    hr_user(django_user_model, "ann", ANNOUNCER, "Ann", "Lee")
    base = live_server.url
    page = open_page(browser)
    listed = f"/hr/{mix.item.pk}/not-acknowledged/?occurrence={mix.first.pk}"
    log_in(page, base, "ann", listed)
    form = page.locator(".remind-form")
    waiting = page.locator("#not-acknowledged-count").inner_text()
    assert f"Remind the {waiting} " in form.locator("legend").inner_text()
    form.screenshot(path=str(shots / "remind.png"))
    token = form.locator("input[name=token]").input_value()
    form.get_by_role("button", name="Remind them").click()
    page.wait_for_url(f"{base}/hr/{mix.item.pk}/")
    assert "Reminder queued" in page.locator(".messages").inner_text()
    # The same form sent again, as a page kept in the browser's history would send it: the
    # list drawn again carries a fresh token, so put the first one back before pressing.
    page.goto(base + listed)
    resent = page.locator(".remind-form")
    assert resent.locator("input[name=token]").input_value() != token
    resent.locator("input[name=token]").evaluate("(field, old) => { field.value = old; }", token)
    resent.get_by_role("button", name="Remind them").click()
    page.wait_for_url(f"{base}/hr/{mix.item.pk}/")
    assert "already sent; nothing more was sent" in page.locator(".messages").inner_text()
    assert Occurrence.objects.filter(reminder_of=mix.first).count() == 1
    page.context.close()


def test_the_section_fits_a_phones_width(
    browser: Any, live_server: Any, django_user_model: Any, mix: Mix
) -> None:
    hr_user(django_user_model, "ann", ANNOUNCER, "Ann", "Lee")
    page = browser.new_context(viewport=PHONE).new_page()
    page.set_default_timeout(5_000)
    log_in(page, live_server.url, "ann", f"/hr/{mix.item.pk}/")
    chart = page.locator("#engagement-chart svg").bounding_box()
    assert chart is not None and 0 < chart["width"] <= PHONE["width"], chart
    # Nothing in the section reaches past its card (wide tables scroll inside their own box).
    wider = page.evaluate(
        "() => { const s = document.getElementById('engagement').getBoundingClientRect();"
        " return [...document.querySelectorAll('#engagement *')]"
        ".filter(e => !e.closest('.table-scroll') || e.classList.contains('table-scroll'))"
        ".filter(e => e.getBoundingClientRect().right > s.right + 1)"
        ".map(e => e.tagName + '#' + e.id + '.' + e.className); }"
    )
    assert wider == []
    page.context.close()
