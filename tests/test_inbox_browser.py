"""The inbox in a real headless Chromium: log in, read, acknowledge, against a live server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import Employee, InboxItem
from tests import factories

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TIMEOUT_MS = 5_000


def test_an_employee_logs_in_reads_and_acknowledges_an_announcement(
    browser: Any, live_server: Any, settings: Any, tmp_path: Path
) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = get_user_model().objects.create_user(username="ada", password="not-a-real-pw-1")
    Employee.objects.create(
        email="ada@example.com", name="Ada Lovelace", timezone="Europe/London", user=user
    )
    factories.fired(
        channels=("inapp",),
        title="Fire drill at noon",
        body="Meet at **point B**.",
        requires_ack=True,
    )
    assert Dispatcher().run_until_idle() == 1
    item = InboxItem.objects.get()

    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{live_server.url}/inbox/")
    assert page.url.startswith(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("not-a-real-pw-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/inbox/")

    row = page.locator(".inbox-item", has_text="Fire drill at noon")
    assert "unread" in (row.get_attribute("class") or "")
    assert row.get_by_text("Unread", exact=True).is_visible()
    assert row.get_by_text("Action needed", exact=True).is_visible()
    assert "1 unread" in page.locator("#unread-count").inner_text()

    row.get_by_role("link").click()
    page.wait_for_url(f"{live_server.url}/inbox/{item.pk}/")
    assert page.get_by_role("heading", level=1).inner_text() == "Fire drill at noon"
    assert page.locator(".announcement-body strong").inner_text() == "point B"
    page.get_by_role("button", name="Acknowledge").click()
    page.wait_for_url(f"{live_server.url}/inbox/{item.pk}/")
    assert "You acknowledged this on" in page.locator("#acknowledged").inner_text()
    assert page.get_by_role("button", name="Acknowledge").count() == 0

    screenshot = tmp_path / "acknowledged.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.exists() and screenshot.stat().st_size > 0
    assert screenshot.read_bytes().startswith(b"\x89PNG")

    page.get_by_role("link", name="Back to inbox").click()
    page.wait_for_url(f"{live_server.url}/inbox/")
    row = page.locator(".inbox-item", has_text="Fire drill at noon")
    assert "unread" not in (row.get_attribute("class") or "").split()
    assert row.get_by_text("Unread", exact=True).count() == 0
    assert row.get_by_text("Action needed", exact=True).count() == 0
    assert "No unread announcements" in page.locator("#unread-count").inner_text()

    item.refresh_from_db()
    assert item.read_at is not None and item.acknowledged_at is not None
    assert item.read_at <= item.acknowledged_at
