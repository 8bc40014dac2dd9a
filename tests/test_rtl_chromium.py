"""Right-to-left texts read right to left: an announcement with an Arabic and a Hebrew
translation, sent for real to people who read those languages, by email (the HTML part as it
ARRIVED at the aiosmtpd server on loopback) and to their in-app inbox (served by a live
server), each rendered in real headless Chromium. The title and body carry ``dir="rtl"``,
Chromium computes ``direction: rtl`` for them, and their text sits against the right edge of
its box; the words around them (no Arabic or Hebrew catalog ships) stay left to right.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from bulletin import conf
from bulletin.dispatch import translations
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import Delivery, DeliveryState, Employee, InboxItem
from bulletin.domain.roles import ANNOUNCER
from tests import factories
from tests.harness import SmtpSink

# Transactional: Playwright's event loop runs in this thread beside the ORM (as in
# test_email_rendered_chromium), and the in-memory database's shared cache locks otherwise.
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# Each shorter than a phone's line, so where its line starts shows how it is aligned.
TEXTS = {
    "ar": ("إعادة افتتاح المقصف", "يفتح المقصف يوم الاثنين."),
    "he": ("הקפטריה נפתחת מחדש", "הקפטריה נפתחת ביום שני."),
}

# Where an element's text sits inside its content box, and which way Chromium lays it out.
PLACEMENT = """(element) => {
  const style = getComputedStyle(element);
  const range = document.createRange();
  range.selectNodeContents(element);
  const text = range.getBoundingClientRect();
  const box = element.getBoundingClientRect();
  return {
    direction: style.direction,
    dir: element.closest('[dir]') ? element.closest('[dir]').getAttribute('dir') : '',
    textLeft: text.left,
    textRight: text.right,
    left: box.left + parseFloat(style.paddingLeft),
    right: box.right - parseFloat(style.paddingRight),
  };
}"""


def assert_right_to_left(page: Any, selector: str) -> None:
    placed = page.locator(selector).first.evaluate(PLACEMENT)
    assert placed["direction"] == "rtl" and placed["dir"] == "rtl", (selector, placed)
    # Against the right edge, well clear of the left one (the texts are shorter than a line).
    assert abs(placed["textRight"] - placed["right"]) <= 2, (selector, placed)
    assert placed["textLeft"] - placed["left"] > 40, (selector, placed)


def assert_left_to_right(page: Any, selector: str) -> None:
    placed = page.locator(selector).first.evaluate(PLACEMENT)
    assert placed["direction"] == "ltr", (selector, placed)
    assert abs(placed["textLeft"] - placed["left"]) <= 2, (selector, placed)


@pytest.fixture
def sent(settings: Any, smtp_settings: SmtpSink) -> SmtpSink:
    """One announcement in English, Arabic and Hebrew, sent by email and to the inbox of one
    Arabic and one Hebrew reader, each with a login."""
    settings.BULLETIN = replace(conf.load({"BULLETIN_LANGUAGES": "en,ar,he"}))
    ann = factories.person("ann", ANNOUNCER)
    for tag in TEXTS:
        user = get_user_model().objects.create_user(username=f"reader-{tag}")
        Employee.objects.create(
            email=f"reader-{tag}@example.com", name="Reader", timezone="Asia/Jerusalem",
            language=tag, user=user,
        )  # fmt: skip
    start = (timezone.now() - timedelta(minutes=2)).replace(second=1, microsecond=0)
    with time_machine.travel(start, tick=False):
        item = factories.announcement(
            now=start, title="The canteen reopens", channels=("email", "inapp")
        )
        for tag, (title, body) in TEXTS.items():
            translations.save_text(item, tag, title, body, ann)
    factories.tick_after(item)
    Dispatcher().run_until_idle()
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.SENT}
    assert sorted(Delivery.objects.values_list("language", flat=True)) == ["ar", "ar", "he", "he"]
    return smtp_settings


def arrived(sink: SmtpSink, tag: str) -> str:
    (received,) = [r for r in sink.received if f"reader-{tag}@" in str(r.message["To"])]
    part = received.message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


@pytest.mark.parametrize("tag", sorted(TEXTS))
def test_an_arabic_or_hebrew_email_reads_right_to_left_in_chromium(
    sent: SmtpSink, tag: str, browser: Any
) -> None:
    html = arrived(sent, tag)
    title, body = TEXTS[tag]
    assert f'lang="{tag}" dir="rtl"' in html and title in html and body in html
    for width in (375, 1024):
        page = browser.new_page(viewport={"width": width, "height": 800})
        page.set_content(html, wait_until="load")
        assert_right_to_left(page, "h1.title")
        assert_right_to_left(page, ".content p")
        assert_left_to_right(page, ".foot p")  # the English words around it
        page.close()


@pytest.mark.parametrize("tag", sorted(TEXTS))
def test_an_arabic_or_hebrew_inbox_item_reads_right_to_left_in_chromium(
    sent: SmtpSink, tag: str, browser: Any, live_server: Any
) -> None:
    client = Client()
    client.force_login(get_user_model().objects.get(username=f"reader-{tag}"))
    context = browser.new_context(viewport={"width": 1024, "height": 800})
    cookie = client.cookies["sessionid"].value
    context.add_cookies([{"name": "sessionid", "value": cookie, "url": live_server.url}])
    page = context.new_page()
    page.goto(f"{live_server.url}/inbox/")
    title = page.locator(".item-title")
    assert title.inner_text() == TEXTS[tag][0]
    assert title.evaluate("element => getComputedStyle(element).direction") == "rtl"
    item = InboxItem.objects.get(employee__language=tag)
    page.goto(f"{live_server.url}/inbox/{item.pk}/")
    assert_right_to_left(page, "article.announcement h1")
    assert_right_to_left(page, ".announcement-body p")
    assert_left_to_right(page, "p.back")  # the page's own words stay left to right
    context.close()
