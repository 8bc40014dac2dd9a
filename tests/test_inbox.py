"""The employee's in-app inbox and channel preferences, through Django's test client."""

from __future__ import annotations

import itertools
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from bulletin.dispatch.fanout import fan_out
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain.models import (
    ChannelOptOut,
    Delivery,
    DeliveryState,
    Employee,
    InboxItem,
)
from tests import factories

pytestmark = pytest.mark.django_db

_serial = itertools.count()


def login(username: str = "ada") -> User:
    user = get_user_model().objects.create_user(username=username, password="not-a-real-pw-1")
    assert isinstance(user, User)  # Bulletin keeps Django's own user model
    return user


def employee_for(user: User | None, zone: str = "Europe/London") -> Employee:
    n = next(_serial)
    return Employee.objects.create(
        email=f"employee{n}@example.com", name=f"Employee {n}", timezone=zone, user=user
    )


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    # The default hasher takes most of a second per password by design; tests need no strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def employee() -> Employee:
    return employee_for(login())


@pytest.fixture
def client(client: Client, employee: Employee) -> Client:
    assert employee.user is not None
    client.force_login(employee.user)
    return client


def page(response: Any) -> str:
    return response.content.decode()


# Login and linking


@pytest.mark.parametrize(
    "url", ["/inbox/", "/inbox/1/", "/preferences/"], ids=["inbox", "item", "preferences"]
)
def test_every_employee_page_sends_an_anonymous_visitor_to_the_login_page(url: str) -> None:
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


def test_an_anonymous_acknowledgement_returns_to_the_item_after_logging_in() -> None:
    response = Client().post("/inbox/7/acknowledge/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/inbox/7/"


def test_logging_in_through_the_form_lands_on_the_inbox(employee: Employee) -> None:
    anonymous = Client()
    form = anonymous.get("/accounts/login/")
    assert form.status_code == 200 and 'name="username"' in page(form)
    response = anonymous.post(
        "/accounts/login/", {"username": "ada", "password": "not-a-real-pw-1"}
    )
    assert response.status_code == 302 and response["Location"] == "/inbox/"
    assert anonymous.get("/inbox/").status_code == 200


def test_a_login_without_an_employee_gets_a_page_saying_it_is_not_linked() -> None:
    unlinked = Client()
    unlinked.force_login(login("hr-admin"))
    for url in ("/inbox/", "/preferences/"):
        response = unlinked.get(url)
        assert response.status_code == 403
        assert "not linked to an employee" in page(response)


# The inbox list


def test_an_employee_sees_only_their_own_announcements_newest_first(
    client: Client, employee: Employee
) -> None:
    now = timezone.now()
    factories.inbox_item(employee, "Older news", at=now - timedelta(days=2))
    factories.inbox_item(employee, "Newest news", at=now - timedelta(hours=1))
    factories.inbox_item(employee, "Middle news", at=now - timedelta(days=1))
    factories.inbox_item(employee_for(login("grace")), "Someone else's news", at=now)
    html = page(client.get("/inbox/"))
    assert "Someone else&#x27;s news" not in html and "Someone else's news" not in html
    positions = [html.index(title) for title in ("Newest news", "Middle news", "Older news")]
    assert positions == sorted(positions)


def test_the_inbox_counts_unread_items_and_flags_those_needing_acknowledgement(
    client: Client, employee: Employee
) -> None:
    factories.inbox_item(employee, "First")
    factories.inbox_item(employee, "Second", requires_ack=True)
    done = factories.inbox_item(employee, "Third", requires_ack=True)
    InboxItem.objects.filter(pk=done.pk).update(
        read_at=timezone.now(), acknowledged_at=timezone.now()
    )
    response = client.get("/inbox/")
    assert response.context["unread"] == 2 and response.context["action_needed"] == 1
    html = page(response)
    assert "<strong>2</strong> unread" in html
    assert html.count(">Unread</span>") == 2
    assert html.count(">Action needed</span>") == 1


def test_the_inbox_pages_by_twenty_with_a_fixed_number_of_queries(
    client: Client, employee: Employee, django_assert_max_num_queries: Any
) -> None:
    now = timezone.now()
    for n in range(45):
        factories.inbox_item(employee, f"Item {n:02d}", at=now - timedelta(minutes=n))
    with django_assert_max_num_queries(6):  # session, user, employee, counts, page count, page
        first = client.get("/inbox/")
    assert len(first.context["page"].object_list) == 20
    last = client.get("/inbox/?page=3")
    assert [i.title for i in last.context["page"].object_list] == [
        f"Item {n:02d}" for n in range(40, 45)
    ]


def test_mark_all_as_read_reads_only_the_employees_own_items(
    client: Client, employee: Employee
) -> None:
    mine = [factories.inbox_item(employee, "A"), factories.inbox_item(employee, "B")]
    theirs = factories.inbox_item(employee_for(login("grace")), "C")
    assert client.get("/inbox/read/").status_code == 405
    response = client.post("/inbox/read/")
    assert response.status_code == 302 and response["Location"] == "/inbox/"
    assert all(InboxItem.objects.get(pk=i.pk).read_at for i in mine)
    assert InboxItem.objects.get(pk=theirs.pk).read_at is None


# One item


def test_opening_an_item_marks_it_read_once(client: Client, employee: Employee) -> None:
    item = factories.inbox_item(employee, html="<p>Hello <strong>there</strong>.</p>")
    assert client.head(f"/inbox/{item.pk}/").status_code == 200
    assert InboxItem.objects.get(pk=item.pk).read_at is None  # a probe is not a read
    response = client.get(f"/inbox/{item.pk}/")
    assert response.status_code == 200
    assert "<p>Hello <strong>there</strong>.</p>" in page(response)  # sanitised HTML, unescaped
    first_read = InboxItem.objects.get(pk=item.pk).read_at
    assert first_read is not None
    client.get(f"/inbox/{item.pk}/")
    assert InboxItem.objects.get(pk=item.pk).read_at == first_read


def test_an_item_shows_its_date_in_the_employees_own_time_zone(client: Client) -> None:
    user = login("newyorker")
    client.force_login(user)
    item = factories.inbox_item(
        employee_for(user, zone="America/New_York"), at=datetime(2026, 1, 15, 14, 0, tzinfo=UTC)
    )
    html = page(client.get(f"/inbox/{item.pk}/"))
    assert "15 January 2026, 09:00 EST" in html
    assert 'datetime="2026-01-15T14:00:00+00:00"' in html
    assert "15 Jan 2026, 09:00 EST" in page(client.get("/inbox/"))


def test_a_title_is_escaped_even_though_the_body_is_trusted(
    client: Client, employee: Employee
) -> None:
    item = factories.inbox_item(employee, title="<script>alert(1)</script>")
    for url in ("/inbox/", f"/inbox/{item.pk}/"):
        html = page(client.get(url))
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_another_employees_item_is_not_found(client: Client) -> None:
    theirs = factories.inbox_item(employee_for(login("grace")), requires_ack=True)
    assert client.get(f"/inbox/{theirs.pk}/").status_code == 404
    assert client.post(f"/inbox/{theirs.pk}/acknowledge/").status_code == 404
    assert client.get("/inbox/999999/").status_code == 404
    assert InboxItem.objects.get(pk=theirs.pk).read_at is None
    assert InboxItem.objects.get(pk=theirs.pk).acknowledged_at is None


def test_acknowledging_sets_the_time_once_and_is_idempotent(
    client: Client, employee: Employee
) -> None:
    item = factories.inbox_item(employee, requires_ack=True)
    assert "Acknowledge</button>" in page(client.get(f"/inbox/{item.pk}/"))
    response = client.post(f"/inbox/{item.pk}/acknowledge/")
    assert response.status_code == 302 and response["Location"] == f"/inbox/{item.pk}/"
    first = InboxItem.objects.get(pk=item.pk).acknowledged_at
    assert first is not None
    assert client.post(f"/inbox/{item.pk}/acknowledge/").status_code == 302
    assert InboxItem.objects.get(pk=item.pk).acknowledged_at == first
    html = page(client.get(f"/inbox/{item.pk}/"))
    assert "You acknowledged this on" in html and "Acknowledge</button>" not in html


def test_acknowledging_an_unread_item_also_marks_it_read(
    client: Client, employee: Employee
) -> None:
    item = factories.inbox_item(employee, requires_ack=True)
    client.post(f"/inbox/{item.pk}/acknowledge/")
    item.refresh_from_db()
    assert item.read_at == item.acknowledged_at is not None


def test_acknowledging_an_item_that_does_not_ask_for_it_is_a_bad_request(
    client: Client, employee: Employee
) -> None:
    item = factories.inbox_item(employee, requires_ack=False)
    response = client.post(f"/inbox/{item.pk}/acknowledge/")
    assert response.status_code == 400
    assert "does not ask for acknowledgement" in page(response)
    assert InboxItem.objects.get(pk=item.pk).acknowledged_at is None


def test_acknowledging_is_only_accepted_as_a_post(client: Client, employee: Employee) -> None:
    item = factories.inbox_item(employee, requires_ack=True)
    assert client.get(f"/inbox/{item.pk}/acknowledge/").status_code == 405
    assert InboxItem.objects.get(pk=item.pk).acknowledged_at is None


def test_acknowledging_requires_a_csrf_token(employee: Employee) -> None:
    item = factories.inbox_item(employee, requires_ack=True)
    strict = Client(enforce_csrf_checks=True)
    assert employee.user is not None
    strict.force_login(employee.user)
    assert strict.post(f"/inbox/{item.pk}/acknowledge/").status_code == 403
    assert InboxItem.objects.get(pk=item.pk).acknowledged_at is None


# Preferences


def test_the_preferences_page_offers_email_and_slack_but_not_the_inbox(client: Client) -> None:
    html = page(client.get("/preferences/"))
    assert 'value="email"' in html and 'value="slack"' in html
    assert 'value="inapp"' not in html
    assert "Mandatory announcements" in html and "safety and legal" in html


def test_saving_preferences_opts_out_and_back_in(
    client: Client, employee: Employee, caplog: pytest.LogCaptureFixture
) -> None:
    def opted_out() -> set[str]:
        return set(
            ChannelOptOut.objects.filter(employee=employee).values_list("channel", flat=True)
        )

    with caplog.at_level(logging.INFO, logger="bulletin.interfaces.inbox"):
        response = client.post("/preferences/", {"opt_out": ["email", "slack"]})
        assert response.status_code == 302 and response["Location"] == "/preferences/"
        assert opted_out() == {"email", "slack"}
        assert 'value="email" id="opt-out-email" aria-describedby="channels-hint" checked' in page(
            client.get("/preferences/")
        )
        client.post("/preferences/", {"opt_out": ["slack"]})
        assert opted_out() == {"slack"}
        client.post("/preferences/", {})
        assert opted_out() == set()
    changes = [
        (r.employee_id, r.channel, r.opted_out)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "bulletin.interfaces.inbox"
    ]
    assert changes == [
        (employee.pk, "email", True),
        (employee.pk, "slack", True),
        (employee.pk, "email", False),
        (employee.pk, "slack", False),
    ]


@pytest.mark.parametrize("channel", ["carrier-pigeon", "inapp"])
def test_an_unknown_or_compulsory_channel_is_a_bad_request(
    client: Client, employee: Employee, channel: str
) -> None:
    response = client.post("/preferences/", {"opt_out": ["email", channel]})
    assert response.status_code == 400
    assert repr(channel) in page(response) and "email, slack" in page(response)
    assert not ChannelOptOut.objects.filter(employee=employee).exists()


# End to end


def test_an_inapp_delivery_dispatched_twice_lands_in_the_inbox_exactly_once(
    client: Client, employee: Employee
) -> None:
    factories.fired(channels=("inapp",), title="Fire drill at noon", requires_ack=True)
    delivery = Delivery.objects.get()
    assert delivery.employee_id == employee.pk and delivery.channel == "inapp"
    assert Dispatcher().run_until_idle() == 1
    assert Dispatcher().run_until_idle() == 0
    fan_out(delivery.occurrence, timezone.now())  # a racing tick or a retried task
    assert Dispatcher().run_until_idle() == 0
    assert Delivery.objects.count() == 1
    assert Delivery.objects.get().state == DeliveryState.SENT
    item = InboxItem.objects.get()
    assert (item.employee_id, item.delivery_id, item.requires_ack) == (
        employee.pk,
        delivery.pk,
        True,
    )
    html = page(client.get("/inbox/"))
    assert html.count("Fire drill at noon") == 1 and ">Action needed</span>" in html
    assert "<strong>news</strong>" in page(client.get(f"/inbox/{item.pk}/"))
