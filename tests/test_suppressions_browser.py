"""The Suppressions screen in real headless Chromium: an administrator filters the list, opens
the bounce behind a suppression, and lifts one; the next announcement emails that address."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bulletin.domain.models import Delivery, DeliveryState, Suppression
from bulletin.domain.roles import ADMINISTRATOR
from tests import factories
from tests.test_hr_browser import hr_user, log_in, open_page
from tests.test_suppressions import bounce_hard, rows_of, send_once

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def test_an_administrator_lifts_a_suppression_and_the_next_send_emails_the_address(
    browser: Any, live_server: Any, django_user_model: Any, shots: Path
) -> None:
    factories.employees(3)
    first = send_once()
    bounce_hard("person0@example.com", first, raw=b"Final-Recipient: rfc822; person0@example.com")
    bounce_hard("person1@example.com", first)
    hr_user(django_user_model, "ada", ADMINISTRATOR, "Ada", "Byron")
    base = live_server.url
    page = open_page(browser)
    log_in(page, base, "ada", "/hr/suppressions/")

    assert page.locator("#suppression-count").inner_text() == "2"
    page.get_by_label("Address", exact=True).fill("person0")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(f"{base}/hr/suppressions/?address=person0")
    row = page.locator("#suppressions tr.suppression")
    assert row.count() == 1 and "5.1.1" in row.inner_text()
    with page.expect_download() as download:
        row.get_by_role("link", name="Message").click()
    saved = Path(download.value.path())
    assert saved.read_bytes() == b"Final-Recipient: rfc822; person0@example.com"
    page.screenshot(path=str(shots / "suppressions.png"), full_page=True)

    row.get_by_role("button", name="Lift the suppression of person0@example.com").click()
    page.wait_for_url(f"{base}/hr/suppressions/")
    assert "Email goes to person0@example.com again" in page.locator("body").inner_text()
    assert page.locator("#suppression-count").inner_text() == "1"
    assert page.locator('tr[data-address="person0@example.com"]').count() == 0
    page.context.close()

    assert Suppression.objects.filter(lifted_at__isnull=False).count() == 1
    later = factories.fired(channels=("email",))
    assert rows_of(later, "person0@example.com") == {"email": (DeliveryState.PENDING, "")}
    assert rows_of(later, "person1@example.com")["email"][0] == DeliveryState.SKIPPED
    assert Delivery.objects.filter(state=DeliveryState.BOUNCED).count() == 2
