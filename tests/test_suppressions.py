"""Suppressed addresses at fan-out (skipped in the same set-based statements as opt-outs, email
only, mandatory or not, by the address as it is now), lifting one, the counts of ``bounced``
wherever delivery states are counted, and HR's Suppressions screen and the employee's page."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bulletin.channels.bounce_report import BounceKind, BounceReport
from bulletin.dispatch import bounces
from bulletin.domain.models import (
    Announcement,
    AnnouncementStatus,
    ApiToken,
    AuditEvent,
    Channel,
    ChannelOptOut,
    Delivery,
    DeliveryState,
    Employee,
    Suppression,
)
from bulletin.domain.records import AuditAction
from bulletin.domain.roles import ADMINISTRATOR, ANNOUNCER
from bulletin.interfaces.hr import engagement
from tests import factories
from tests.test_observability import one, scrape

pytestmark = pytest.mark.django_db

UNKNOWN_USER = "smtp; 550 5.1.1 <person0@example.com>: Recipient address rejected"


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def send_once(**fields: Any) -> Announcement:
    """An announcement over email and the inbox, fanned out once, then cancelled (so a later
    one's tick fans out only the later one), its deliveries sent."""
    fields.setdefault("channels", ("email", "inapp"))
    item = factories.fired(**fields)
    Announcement.objects.filter(pk=item.pk).update(status=AnnouncementStatus.CANCELLED)
    rows = Delivery.objects.filter(occurrence__announcement=item, state=DeliveryState.PENDING)
    factories.put(rows, state=DeliveryState.SENT, sent_at=timezone.now())
    return item


def bounce_hard(address: str, item: Announcement, raw: bytes = b"") -> bounces.Recorded:
    email = Delivery.objects.get(
        occurrence__announcement=item, channel=Channel.EMAIL, employee__email=address
    )
    report = BounceReport(
        kind=BounceKind.HARD,
        source="pipe",
        recipient=address,
        status="5.1.1",
        diagnostic=UNKNOWN_USER,
        delivery_id=email.pk,
    )
    return bounces.record(raw or f"DSN for {address}".encode(), report)


def rows_of(item: Announcement, address: str) -> dict[str, tuple[str, str]]:
    found = Delivery.objects.filter(occurrence__announcement=item, employee__email=address)
    return {d.channel: (d.state, d.last_error) for d in found}


@pytest.fixture
def bounced() -> Announcement:
    """Three people; person0's address bounced hard on the first announcement."""
    factories.employees(3)
    item = send_once()
    bounce_hard("person0@example.com", item)
    return item


# --- fan-out --------------------------------------------------------------------------------


def test_a_suppressed_address_gets_a_skipped_email_and_still_its_inbox_item(
    bounced: Announcement,
) -> None:
    later = factories.fired(channels=("email", "inapp"))
    state, reason = rows_of(later, "person0@example.com")["email"]
    assert state == DeliveryState.SKIPPED
    assert reason.startswith("suppressed: 5.1.1 smtp; 550 5.1.1")
    assert rows_of(later, "person0@example.com")["inapp"] == (DeliveryState.PENDING, "")
    assert rows_of(later, "person1@example.com")["email"] == (DeliveryState.PENDING, "")


def test_a_mandatory_announcement_skips_a_suppressed_address_but_not_an_opt_out(
    bounced: Announcement,
) -> None:
    person1 = Employee.objects.get(email="person1@example.com")
    ChannelOptOut.objects.create(employee=person1, channel=Channel.EMAIL)
    later = factories.fired(channels=("email", "inapp"), mandatory=True)
    assert rows_of(later, "person0@example.com")["email"][0] == DeliveryState.SKIPPED
    assert rows_of(later, "person0@example.com")["inapp"][0] == DeliveryState.PENDING
    assert rows_of(later, "person1@example.com")["email"][0] == DeliveryState.PENDING


def test_someone_opted_out_and_suppressed_is_skipped_once_as_opted_out(
    bounced: Announcement,
) -> None:
    person0 = Employee.objects.get(email="person0@example.com")
    ChannelOptOut.objects.create(employee=person0, channel=Channel.EMAIL)
    later = factories.fired(channels=("email",))
    assert rows_of(later, "person0@example.com") == {
        "email": (DeliveryState.SKIPPED, "opted out of email")
    }


def test_an_employee_whose_address_changed_since_it_bounced_is_emailed(
    bounced: Announcement,
) -> None:
    person0 = Employee.objects.get(email="person0@example.com")
    person0.email = "person0.new@example.com"
    person0.save()
    later = factories.fired(channels=("email",))
    assert rows_of(later, "person0.new@example.com") == {"email": (DeliveryState.PENDING, "")}


def test_lifting_a_suppression_lets_the_next_fan_out_email_them_and_is_audited(
    bounced: Announcement, django_user_model: Any
) -> None:
    admin = factories.person("ada", ADMINISTRATOR)
    suppression = Suppression.objects.get()
    assert bounces.lift(suppression.pk, admin) is True
    assert bounces.lift(suppression.pk, admin) is False  # once: nothing more is audited

    later = factories.fired(channels=("email",))
    assert rows_of(later, "person0@example.com") == {"email": (DeliveryState.PENDING, "")}
    event = AuditEvent.objects.get(action=AuditAction.LIFTED)
    assert event.actor == admin and event.detail["suppression_id"] == suppression.pk
    lifted = Suppression.objects.get()
    assert lifted.lifted_by == admin and lifted.lifted_at is not None


def test_fan_out_costs_the_same_statements_however_many_addresses_are_suppressed() -> None:
    def fan_out_statements(people: int, prefix: str) -> int:
        factories.employees(people, prefix=prefix)
        first = send_once(channels=("email",))
        for n in range(people):
            bounce_hard(f"{prefix}{n}@example.com", first)
        with CaptureQueriesContext(connection) as queries:
            later = send_once(channels=("email", "inapp"))
        skipped = Delivery.objects.filter(
            occurrence__announcement=later, channel="email", state=DeliveryState.SKIPPED
        )
        assert skipped.count() >= people  # every suppressed address skipped
        return len(queries)

    fan_out_statements(1, "warm")  # first-time look-ups (installation, groups) out of the way
    few = fan_out_statements(2, "few")
    many = fan_out_statements(40, "many")
    assert many == few


# --- counts ----------------------------------------------------------------------------------


def test_bounced_is_counted_in_status_metrics_the_api_and_hr_pages(
    bounced: Announcement, client: Client
) -> None:
    out = io.StringIO()
    call_command("status", "--json", stdout=out)
    assert json.loads(out.getvalue())["deliveries"]["bounced"] == 1

    samples = scrape(client)
    assert samples[one("bulletin_deliveries", state="bounced", channel="email")] == 1
    assert samples[one("bulletin_deliveries", state="sent", channel="email")] == 2

    announcer = factories.person("ann", ANNOUNCER)
    _, secret = ApiToken.issue(announcer, "test", ["announcements:read"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    item = client.get(f"/api/v1/announcements/{bounced.pk}", **auth).json()
    assert item["deliveries"]["bounced"] == 1 and item["deliveries"]["sent"] == 5
    occurrences = client.get(f"/api/v1/announcements/{bounced.pk}/occurrences", **auth).json()
    listed = occurrences["items"] if isinstance(occurrences, dict) else occurrences
    assert listed[0]["deliveries"]["bounced"] == 1

    client.force_login(announcer)
    page = client.get(f"/hr/{bounced.pk}/").content.decode()
    assert '<th scope="col">Bounced</th>' in page
    assert '<td class="bad">1</td>' in page
    assert 'count-bounced">1 bounced' in client.get("/hr/").content.decode()


def test_a_bounced_email_is_not_counted_as_delivered(bounced: Announcement) -> None:
    delivered, _ = engagement.delivered_by_occurrence(bounced)
    assert list(delivered.values()) == [{"email": 2, "inapp": 3}]


# --- the Suppressions screen and the employee's page ----------------------------------------


def test_the_suppressions_screen_lists_each_with_its_bounce_and_filters_by_address(
    bounced: Announcement, client: Client
) -> None:
    bounce_hard("person2@example.com", bounced)
    client.force_login(factories.person("ann", ANNOUNCER))
    page = client.get("/hr/suppressions/").content.decode()
    assert 'id="suppression-count">2<' in page
    assert "person0@example.com" in page and "Recipient address rejected" in page
    assert "/lift/" not in page  # an announcer may see, not lift

    filtered = client.get("/hr/suppressions/", {"address": "PERSON2"}).content.decode()
    assert 'id="suppression-count">1<' in filtered
    assert 'data-address="person2@example.com"' in filtered
    assert 'data-address="person0@example.com"' not in filtered


def test_a_search_of_the_suppressions_is_kept_from_page_to_page(
    bounced: Announcement, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bulletin.interfaces.hr import suppressions

    bounce_hard("person1@example.com", bounced)
    monkeypatch.setattr(suppressions, "PER_PAGE", 1)
    client.force_login(factories.person("ann", ANNOUNCER))
    html = client.get("/hr/suppressions/?address=example.com").content.decode()
    assert '<a href="?address=example.com&amp;page=2" rel="next">Next</a>' in html
    assert "Page 1 of 2" in html


def test_a_raw_bounce_downloads_as_plain_text_never_as_a_page(
    bounced: Announcement, client: Client
) -> None:
    hostile = b"<script>alert(1)</script>"
    kept = bounces.record(hostile, BounceReport(kind=BounceKind.UNREADABLE, source="pipe"))
    client.force_login(factories.person("ann", ANNOUNCER))
    response = client.get(f"/hr/bounces/{kept.bounce_id}/message.txt")
    assert response.status_code == 200 and response.content == hostile
    assert response["Content-Type"] == "text/plain"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["X-Content-Type-Options"] == "nosniff"


def test_unreadable_bounces_are_counted_and_listed_on_the_screen(
    bounced: Announcement, client: Client
) -> None:
    for n in range(3):
        report = BounceReport(kind=BounceKind.UNREADABLE, source="maildir", note=f"mangled {n}")
        bounces.record(f"garbage {n}".encode(), report)
    client.force_login(factories.person("ann", ANNOUNCER))
    page = client.get("/hr/suppressions/").content.decode()
    assert 'id="unreadable-count">3<' in page and "mangled 2" in page


def test_an_administrator_lifts_one_from_the_screen_and_an_announcer_may_not(
    bounced: Announcement, client: Client
) -> None:
    suppression = Suppression.objects.get()
    client.force_login(factories.person("ann", ANNOUNCER))
    assert client.post(f"/hr/suppressions/{suppression.pk}/lift/").status_code == 403
    assert Suppression.objects.get().lifted_at is None

    client.force_login(factories.person("ada", ADMINISTRATOR, is_staff=True))
    response = client.post(f"/hr/suppressions/{suppression.pk}/lift/")
    assert response.status_code == 302 and response["Location"] == "/hr/suppressions/"
    assert Suppression.objects.get().lifted_at is not None
    assert AuditEvent.objects.filter(action=AuditAction.LIFTED).count() == 1


def test_the_employees_admin_page_lists_their_suppressions(
    bounced: Announcement, client: Client
) -> None:
    person0 = Employee.objects.get(email="person0@example.com")
    client.force_login(factories.person("ada", ADMINISTRATOR, is_staff=True))
    page = client.get(f"/admin/bulletin/employee/{person0.pk}/change/").content.decode()
    assert "email suppressions" in page.lower()
    assert "suppressed: 5.1.1" in page
    assert "/hr/suppressions/?address=person0%40example.com" in page
