"""An email's signed links — Open in Bulletin, Manage preferences, Acknowledge — through the
real views, with the messages dispatch composes for real claimed deliveries."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from bulletin.channels.base import Message
from bulletin.dispatch import ledger, signed_links
from bulletin.dispatch.compose import BatchContent, audience_in_words
from bulletin.dispatch.sender import Dispatcher
from bulletin.domain import engagement, roles
from bulletin.domain.models import (
    Announcement,
    AudienceKind,
    ChannelOptOut,
    Employee,
    Engagement,
    InboxItem,
    Occurrence,
)
from tests import factories

pytestmark = pytest.mark.django_db

SITE = "https://bulletin.example.com"


@pytest.fixture(autouse=True)
def site(settings: Any) -> None:
    settings.BULLETIN = replace(settings.BULLETIN, site_url=SITE)


def composed(requires_ack: bool = False, channels: tuple[str, ...] = ("email",)) -> list[Message]:
    """The messages dispatch makes for a fired announcement's claimed deliveries."""
    if not Employee.objects.exists():
        factories.employees(2)
    factories.fired(requires_ack=requires_ack, channels=channels, sender="")
    rows = ledger.claim_rows("token", 100, timezone.now(), timedelta(minutes=1))
    content = BatchContent(rows, {})
    return [content.message(row) for row in rows]


def path_of(url: str) -> str:
    assert url.startswith(f"{SITE}/"), url
    return urlsplit(url).path


def the_occurrence() -> Occurrence:
    return Occurrence.objects.get()


def employee_of(message: Message) -> Employee:
    assert message.recipient is not None
    return Employee.objects.get(email=message.recipient.email)


# --- what dispatch puts in an email ----------------------------------------------------------


def test_an_email_carries_its_persons_own_signed_links_and_why_they_got_it() -> None:
    messages = composed(requires_ack=True)
    assert len(messages) == 2
    for message in messages:
        assert message.footer is not None
        employee = employee_of(message)
        assert message.footer.reason == "You are receiving this because it was sent to everyone."
        link = signed_links.read_sign_in(path_of(message.footer.open_url).split("/")[2])
        assert (link.employee_id, link.occurrence_id) == (employee.pk, the_occurrence().pk)
        assert signed_links.read_preferences(
            path_of(message.footer.preferences_url).split("/")[3]
        ) == (employee.pk)
        acknowledgement = signed_links.read_acknowledge(
            path_of(message.footer.acknowledge_url).split("/")[2]
        )
        assert acknowledgement.channel == "email" and acknowledgement.employee_id == employee.pk


def test_an_email_that_asks_no_acknowledgement_has_no_acknowledge_link() -> None:
    (message, _) = composed(requires_ack=False)
    assert message.footer is not None and message.footer.acknowledge_url == ""


def test_other_channels_carry_no_email_footer() -> None:
    messages = composed(channels=("inapp",))
    assert messages and all(message.footer is None for message in messages)


@pytest.mark.parametrize(
    ("kind", "values", "reason"),
    [
        (AudienceKind.ALL, [], "it was sent to everyone."),
        (AudienceKind.DEPARTMENT, ["Sales"], "it was sent to the Sales department."),
        (
            AudienceKind.DEPARTMENT,
            ["Sales", "Legal"],
            "it was sent to the Sales and Legal departments.",
        ),
        (
            AudienceKind.LOCATION,
            ["Leeds", "Pune", "Oslo"],
            "it was sent to people in Leeds, Pune and Oslo.",
        ),
        (AudienceKind.LIST, [], "you were chosen as one of its recipients."),
    ],
)
def test_the_footer_says_the_audience_in_words(kind: str, values: list[str], reason: str) -> None:
    said = audience_in_words(Announcement(audience_kind=kind, audience_values=values))
    assert said == f"You are receiving this because {reason}"


# --- Open in Bulletin --------------------------------------------------------------------------


def test_open_in_bulletin_signs_the_employee_in_links_a_new_user_and_counts_the_reading() -> None:
    (message, _) = composed()
    employee = employee_of(message)
    assert message.footer is not None and employee.user_id is None
    client = Client()
    landed = client.get(path_of(message.footer.open_url), follow=True)
    assert landed.status_code == 200
    assert landed.redirect_chain[0][0] == f"/announcements/{the_occurrence().pk}/"
    employee.refresh_from_db()
    user = User.objects.get(pk=employee.user_id)
    assert user.email == employee.email and not user.has_usable_password()
    assert landed.context["user"] == user
    reading = Engagement.objects.get(employee=employee)
    assert reading.opened_at is not None and reading.acknowledged_at is None


def test_open_in_bulletin_links_an_existing_user_with_the_same_address() -> None:
    (message, _) = composed()
    employee = employee_of(message)
    existing = User.objects.create_user("someone", employee.email.upper())
    assert message.footer is not None
    Client().get(path_of(message.footer.open_url))
    employee.refresh_from_db()
    assert employee.user_id == existing.pk


@pytest.mark.parametrize("days", [15, 30])
def test_an_expired_sign_in_link_is_refused_and_signs_no_one_in(days: int) -> None:
    (message, _) = composed()
    assert message.footer is not None
    client = Client()
    with time_machine.travel(timezone.now() + timedelta(days=days)):
        refused = client.get(path_of(message.footer.open_url))
    assert refused.status_code == 400 and b"expired" in refused.content
    assert "_auth_user_id" not in client.session
    assert not Engagement.objects.exists()


def test_a_sign_in_link_still_works_on_its_last_day() -> None:
    (message, _) = composed()
    assert message.footer is not None
    with time_machine.travel(timezone.now() + timedelta(days=13, hours=23)):
        assert Client().get(path_of(message.footer.open_url)).status_code == 302


def test_a_tampered_sign_in_link_is_refused() -> None:
    first, second = composed()
    assert first.footer is not None
    path = path_of(first.footer.open_url)
    forged = path.replace(f"/e/{employee_of(first).pk}.", f"/e/{employee_of(second).pk}.")
    assert forged != path
    for attempt in (forged, path[:-6] + "/", "/e/garbage/"):
        answer = Client().get(attempt)
        assert answer.status_code == 400, attempt
    assert not User.objects.exists()


def test_a_sign_in_link_stops_working_when_the_address_changes_or_the_person_leaves() -> None:
    first, second = composed()
    assert first.footer is not None and second.footer is not None
    Employee.objects.filter(pk=employee_of(first).pk).update(email="reassigned@example.com")
    Employee.objects.filter(pk=employee_of(second).pk).update(active=False)
    assert Client().get(path_of(first.footer.open_url)).status_code == 400
    assert Client().get(path_of(second.footer.open_url)).status_code == 400
    assert not User.objects.exists()


@pytest.mark.parametrize("role", [roles.ANNOUNCER, roles.APPROVER, roles.ADMINISTRATOR])
def test_a_link_never_signs_in_a_user_who_may_use_hrs_screens(role: str) -> None:
    (message, _) = composed()
    employee = employee_of(message)
    staff = factories.person("hr", role)
    Employee.objects.filter(pk=employee.pk).update(user=staff)
    assert message.footer is not None
    client = Client()
    answer = client.get(path_of(message.footer.open_url))
    assert answer.status_code == 302 and answer["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session


def test_a_link_signs_in_a_user_in_the_employee_role() -> None:
    (message, _) = composed()
    employee = employee_of(message)
    Employee.objects.filter(pk=employee.pk).update(user=factories.person("eve", roles.EMPLOYEE))
    assert message.footer is not None
    client = Client()
    assert client.get(path_of(message.footer.open_url)).status_code == 302
    assert client.session["_auth_user_id"] == str(
        employee.__class__.objects.get(pk=employee.pk).user_id
    )


# --- Manage preferences --------------------------------------------------------------------------


def test_the_preferences_link_changes_that_persons_channels_without_a_login() -> None:
    (message, _) = composed()
    employee = employee_of(message)
    assert message.footer is not None
    path = path_of(message.footer.preferences_url)
    client = Client()
    page = client.get(path)
    assert page.status_code == 200 and f'action="{path}"' in page.content.decode()
    saved = client.post(path, {"opt_out": ["email"]})
    assert saved.status_code == 302 and saved["Location"] == path
    assert list(ChannelOptOut.objects.values_list("employee", "channel")) == [
        (employee.pk, "email")
    ]


def test_a_tampered_preferences_link_changes_nothing() -> None:
    (message, _) = composed()
    assert message.footer is not None
    path = path_of(message.footer.preferences_url)
    forged = path.replace("/link/", "/link/9") if "/link/" in path else path
    assert Client().post(forged, {"opt_out": ["email"]}).status_code == 400
    assert not ChannelOptOut.objects.exists()


# --- Acknowledge ------------------------------------------------------------------------------


def test_following_the_acknowledge_link_records_nothing_until_its_button_is_pressed() -> None:
    (message, _) = composed(requires_ack=True)
    assert message.footer is not None
    path = path_of(message.footer.acknowledge_url)
    client = Client()
    page = client.get(path)  # what a mail scanner does
    assert page.status_code == 200 and b"Acknowledge</button>" in page.content
    assert not Engagement.objects.filter(acknowledged_at__isnull=False).exists()
    assert client.post(path).status_code == 302
    done = Engagement.objects.get()
    assert done.acknowledged_at is not None and done.acknowledged_via == "email"
    assert done.opened_at == done.acknowledged_at
    assert "You acknowledged this" in client.get(path).content.decode()


def test_acknowledging_twice_keeps_the_first_time() -> None:
    (message, _) = composed(requires_ack=True)
    assert message.footer is not None
    path = path_of(message.footer.acknowledge_url)
    Client().post(path)
    first = Engagement.objects.get().acknowledged_at
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        Client().post(path)
    assert Engagement.objects.get().acknowledged_at == first


def test_an_acknowledgement_by_email_shows_on_the_persons_inbox_item() -> None:
    (employee,) = factories.employees(1)
    factories.fired(requires_ack=True, channels=("inapp", "email"))
    Dispatcher().run_until_idle()
    item = InboxItem.objects.get(employee=employee)
    assert item.acknowledged_at is None
    url = signed_links.acknowledge_url(employee.pk, the_occurrence().pk, "email")
    Client().post(path_of(url))
    item.refresh_from_db()
    assert item.acknowledged_at is not None and item.read_at == item.acknowledged_at
    assert Engagement.objects.get().acknowledged_via == "email"


def test_an_acknowledge_link_for_an_announcement_that_asks_none_is_refused() -> None:
    (message, _) = composed(requires_ack=False)
    employee = employee_of(message)
    url = signed_links.acknowledge_url(employee.pk, the_occurrence().pk, "email")
    assert Client().post(path_of(url)).status_code == 400
    assert not Engagement.objects.exists()


def test_an_acknowledge_link_for_someone_it_did_not_reach_is_refused() -> None:
    composed(requires_ack=True)
    (outsider,) = factories.employees(1, prefix="outsider")
    url = signed_links.acknowledge_url(outsider.pk, the_occurrence().pk, "email")
    assert Client().post(path_of(url)).status_code == 400
    assert not Engagement.objects.exists()


# --- the record itself ------------------------------------------------------------------------


def test_opening_and_acknowledging_say_whether_it_was_the_first_time() -> None:
    composed()
    occurrence, (employee, _) = the_occurrence(), Employee.objects.order_by("pk")
    now = timezone.now()
    assert engagement.opened(occurrence.pk, employee.pk, now)
    assert not engagement.opened(occurrence.pk, employee.pk, now + timedelta(minutes=5))
    assert engagement.acknowledged(occurrence.pk, employee.pk, "slack", now + timedelta(hours=1))
    assert not engagement.acknowledged(occurrence.pk, employee.pk, "email", now)
    row = Engagement.objects.get()
    assert (row.opened_at, row.acknowledged_via) == (now, "slack")


def test_someone_reached_only_by_email_acknowledges_on_the_page_open_in_bulletin_shows() -> None:
    (message, _) = composed(requires_ack=True)
    assert message.footer is not None
    client = Client()
    page = client.get(path_of(message.footer.open_url), follow=True)
    assert b"Acknowledge</button>" in page.content
    occurrence = the_occurrence()
    client.post(f"/announcements/{occurrence.pk}/acknowledge/")
    done = Engagement.objects.get(employee=employee_of(message))
    assert done.acknowledged_via == "web" and done.opened_at is not None
    again = client.get(f"/announcements/{occurrence.pk}/")
    assert "You acknowledged this on" in again.content.decode()


def test_a_slack_message_to_one_person_links_to_the_whole_text_with_their_sign_in_link() -> None:
    messages = composed(channels=("slack",))
    for message in messages:
        link = signed_links.read_sign_in(path_of(message.web_url).split("/")[2])
        assert link.employee_id == employee_of(message).pk
        assert message.footer is None


def test_a_username_taken_by_someone_elses_login_sends_the_person_to_the_login_page() -> None:
    first, second = composed()
    taken = User.objects.create_user(employee_of(first).email.lower(), "someone@else.example")
    Employee.objects.filter(pk=employee_of(second).pk).update(user=taken)
    assert first.footer is not None
    client = Client()
    answer = client.get(path_of(first.footer.open_url))
    assert answer.status_code == 302 and answer["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session
